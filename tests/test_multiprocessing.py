"""nlp.pipe(n_process=2) with this package's pipelines finishes (forked workers
used to hang in torch's OpenMP pool) and gives the same entities as one process."""
import subprocess
import sys

import pytest

from .conftest import make_nlp

SCRIPT = """
import sys, spacy, torch
torch.set_num_threads(2)
nlp = spacy.load(sys.argv[1])
texts = ["Alice went to China on Monday ."] * 40 + ["Bob met Carol Smith in Paris ."] * 40
one = [[(e.text, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=8)]
two = [[(e.text, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=8, n_process=2)]
print("same" if one == two else "different", torch.get_num_threads())
"""


def test_pipe_with_two_processes_finishes(tiny_bert, tmp_path):
    from .conftest import make_examples

    nlp = make_nlp(tiny_bert)
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    nlp.to_disk(tmp_path / "nlp")
    try:
        result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "nlp")], capture_output=True,
                                text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail("nlp.pipe(n_process=2) did not finish in 180 s")
    assert result.returncode == 0, result.stderr[-2000:]
    # Same predictions; the parent keeps its 2 torch threads.
    assert result.stdout.split() == ["same", "2"]

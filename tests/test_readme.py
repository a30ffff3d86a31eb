"""The README's commands are ones a user can paste."""
import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"
# `spacy project run NAME` then, possibly over a line break, its next argument.
PROJECT_RUN = re.compile(r"spacy project run ([\w-]+)\s+(\S+)")


def project_runs_without_folder(text: str):
    """The `spacy project run` commands whose first argument after the name is a
    `--vars.` override: spaCy's CLI takes that argument as the project folder."""
    return [m.group(0) for m in PROJECT_RUN.finditer(text) if m.group(2).startswith("--vars.")]


def test_the_check_finds_a_missing_project_folder():
    text = "run `python -m spacy project run all --vars.x 1` or\n`spacy project run fast . --vars.x 1`"
    assert project_runs_without_folder(text) == ["spacy project run all --vars.x"]


def test_readme_overrides_follow_the_project_folder():
    assert project_runs_without_folder(README.read_text()) == []

"""Stage-1 variants: one change each to the default's stage 1 (`train-heads`),
trained on the same cached features for the same epochs and scored on test.

usage:
  python scripts/stage1_variants.py train NAME [EPOCHS]
      train-cached as `spacy project run train-heads`, plus the variant's
      overrides, into training/variants/NAME; then `evaluate` on the test split
      into metrics/variants/NAME.json (model-best: the entities do not depend on
      the calibration, which only rescales the confidences).
  python scripts/stage1_variants.py report [OUTPUT_MD]
      The table (default results/stage1_variants.md) of every variant trained,
      under the project's own runs in REFERENCES; variants in RETIRED (code
      removed after they were measured) are listed with the commit that has it.

Run one training at a time: the seconds are wall time on a machine to itself.
"""
import json
import subprocess
import sys
from pathlib import Path

from spacy_posattn.machine import describe_machine

CONFIG = "configs/posattn_minilm.cfg"
HEADS_RATE = "0.001"  # project.yml vars.head_learn_rate
# name: (what changes, config overrides). Each is one change to session 9's stage 1
# (scalar mix for both heads, no attention block in the tagger); the overrides pin
# that base, so a variant means the same under later defaults (depth 1 since session 12).
SESSION9 = {"components.tagger.model.tok2vec.mix": "scalar", "components.tagger.model.depth": "0"}
# Session 12's default stage 1: session 9's with one attention block in the tagger.
SESSION12 = {**SESSION9, "components.tagger.model.depth": "1"}
VARIANTS = {
    "scalar_both": ("session 9's stage 1 (`train-heads` then): scalar mix for both heads, no block in the tagger", dict(SESSION9)),
    "dropout02": (
        "+ posattn_ner's block dropout 0.2 (default 0.1)",
        {**SESSION9, "components.posattn_ner.model.dropout": "0.2"},
    ),
    "rows4x": (
        "+ 4x hash rows for both heads' lexical features ([20000, 4000, 10000, 2500])",
        {**SESSION9, **{f"components.{c}.model.lexical.rows": "[20000,4000,10000,2500]"
                            for c in ("posattn_ner", "tagger")}},
    ),
    "linear_mix": (
        "+ linear mix of the hidden layers (mix = \"linear\") for both heads",
        {**SESSION9, **{f"components.{c}.model.tok2vec.mix": "linear" for c in ("posattn_ner", "tagger")}},
    ),
    "tagger_linear": (
        "+ linear mix for the tagger only (session 10's `train-heads` in a fresh clone + `evaluate-stage1`)",
        {**SESSION9, "components.tagger.model.tok2vec.mix": "linear"},
    ),
    "tagger_depth1": (
        "+ one positional-attention block in the tagger (depth 1, width 256: context for the case features; the default since session 12)",
        dict(SESSION12),
    ),
    "seed1": (
        "session 12's default stage 1 (tagger depth 1) with `system.seed` 1: other initial weights and Doc order, "
        "the seed-to-seed spread",
        {**SESSION12, "system.seed": "1"},
    ),
    "seed2": (
        "as `seed1`, with `system.seed` 2",
        {**SESSION12, "system.seed": "2"},
    ),
    "seed3": (
        "as `seed1`, with `system.seed` 3 (session 14, on the features of session 13's feature pass)",
        {**SESSION12, "system.seed": "3"},
    ),
}
# Variants whose code was removed after they were measured: name: (what, the commit that has it).
# `report` still lists their rows; to train one again, check out that commit.
RETIRED = {
    "crf": (
        "session 12's default stage 1 with a CRF output for posattn_ner (`crf = true`: learned start, transition "
        "and end scores, sequence log likelihood); session 14, on the features of session 13's feature pass",
        "59567cc",
    ),
}

# Rows of the project's own runs, shown above the variants when their files exist.
REFERENCES = {
    "the last `spacy project run fast` (`training/posattn_minilm_fast`: the default's stage-1 config, with its own feature pass)": (
        Path("training/posattn_minilm_fast/train_log.jsonl"), Path("metrics/posattn_minilm_fast.json"),
    ),
}


def train(name: str, epochs: int = 4) -> None:
    if name in RETIRED:
        sys.exit(f"The variant {name!r} needs code that was removed after it was measured: check out commit "
                 f"{RETIRED[name][1]} (e.g. `git worktree add ../{name} {RETIRED[name][1]}`) and run it there.")
    if name not in VARIANTS:
        sys.exit(f"Unknown variant {name!r}; known: {', '.join(VARIANTS)} (retired: {', '.join(RETIRED)})")
    overrides = [arg for key, value in VARIANTS[name][1].items() for arg in (f"--{key}", value)]
    python = sys.executable
    subprocess.run(
        [python, "-m", "spacy_posattn", "train-cached", CONFIG, f"training/variants/{name}", "--epochs", str(epochs),
         "--cache-dir", "corpus/features", "--gpu-id", "-1", "--paths.train", "corpus/train.spacy",
         "--paths.dev", "corpus/dev.spacy", "--paths.encoder", "bundled:all-minilm-l6-v2",
         "--training.optimizer.learn_rate.initial_rate", HEADS_RATE, *overrides],
        check=True,
    )
    subprocess.run(
        [python, "-m", "spacy_posattn", "evaluate", f"training/variants/{name}/model-best", "corpus/test.spacy",
         "-o", f"metrics/variants/{name}.json"],
        check=True,
    )


def _row(label: str, log_path: Path, metrics_path: Path) -> str:
    epochs = [json.loads(line) for line in log_path.read_text(encoding="utf8").splitlines() if line.strip()]
    test = json.loads(metrics_path.read_text(encoding="utf8"))
    per_type = test["ents_per_type"]
    dev = ", ".join(f"{e['scores']['ents_f'] * 100:.2f}" for e in epochs)
    types = " | ".join(f"{per_type.get(t, {}).get('f', 0) * 100:.2f}" for t in ("org", "art", "eve", "nat"))
    return (f"| {label} | {dev} | {test['ents_f'] * 100:.2f} | {test['tag_acc'] * 100:.2f} | "
            f"{test['raw_ents_f'] * 100:.2f} | {types} | {epochs[-1]['seconds']:,.0f} |")


def report(output: str = "results/stage1_variants.md") -> None:
    rows = [
        "# Stage-1 variants: one change each, same cached features, same epochs",
        "",
        "Generated by `python scripts/stage1_variants.py report` from `python scripts/stage1_variants.py train NAME` "
        "(one training at a time); do not edit.",
        f"Machine: {describe_machine()}. Test: strict entity F1 with gold tokens; raw text: the pipeline's tokenizer. "
        "Seconds: the training log's last `seconds`, which counts the feature pass (about 225-300 s) in every row, "
        "also where the run read it from the cache (as measured when it was computed).",
        "",
        "| variant | dev entity F1 per epoch | test F1 | test POS | raw-text F1 | org | art | eve | nat | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, (log_path, metrics_path) in REFERENCES.items():
        if log_path.exists() and metrics_path.exists():
            rows.append(_row(label, log_path, metrics_path))
    described = {name: what for name, (what, _) in VARIANTS.items()}
    described.update({name: f"{what} (code at commit {commit})" for name, (what, commit) in RETIRED.items()})
    for name, what in described.items():
        log_path, metrics_path = Path(f"training/variants/{name}/train_log.jsonl"), Path(f"metrics/variants/{name}.json")
        if log_path.exists() and metrics_path.exists():
            rows.append(_row(f"`{name}`: {what}", log_path, metrics_path))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text("\n".join(rows) + "\n", encoding="utf8")
    print("\n".join(rows))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("train", "report"):
        sys.exit(__doc__)
    if sys.argv[1] == "train":
        if len(sys.argv) < 3:
            sys.exit(__doc__)
        train(sys.argv[2], *(int(a) for a in sys.argv[3:4]))
    else:
        report(*sys.argv[2:3])

#!/usr/bin/env bash
# Install a packaged pipeline where this repo isn't: a new, empty virtual
# environment gets torch (pinned: the CPU build), spacy-posattn's wheel and the
# pipeline's wheel from PACKAGES_DIR (what `spacy project run package` builds;
# everything else comes from the package index), then loads the pipeline by
# name with Hugging Face offline and prints the entities of a sentence.
# usage: bash scripts/install_check.sh PACKAGES_DIR PIPELINE_NAME [VENV_DIR]
set -euo pipefail
packages=$1; name=$2; venv=${3:-$(mktemp -d)/venv}
py=${PYTHON:-$(command -v python3 || command -v python)}
plugin=$(ls "$packages"/dist/spacy_posattn-*.whl 2>/dev/null | tail -n 1 || true)
pipeline=$(ls "$packages"/"$name"-*/dist/"$name"-*.whl 2>/dev/null | tail -n 1 || true)
if [ -z "$plugin" ] || [ -z "$pipeline" ]; then
  echo "install_check: no spacy_posattn wheel in $packages/dist or no $name wheel in $packages/$name-*/dist;" \
       "run \`spacy project run package\` first" >&2
  exit 1
fi
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet "torch==2.13.0" "$plugin" "$pipeline"
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$venv/bin/python" - "$name" <<'PY'
import sys
import spacy

nlp = spacy.load(sys.argv[1])
doc = nlp("Alice went to China on Monday .")
print(nlp.meta["name"], nlp.pipe_names, [(ent.text, ent.label_) for ent in doc.ents])
PY
echo "install_check: $name loaded from a clean virtual environment ($venv)"

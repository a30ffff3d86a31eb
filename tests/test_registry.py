"""Every name in setup.cfg's entry points is registered and importable."""
import configparser
from pathlib import Path

import subprocess
import sys

import pytest
import spacy

SETUP_CFG = Path(__file__).parent.parent / "setup.cfg"
GROUPS = ["spacy_factories", "spacy_architectures", "spacy_readers", "spacy_callbacks"]


def entry_points(group: str):
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)
    lines = cfg["options.entry_points"][group].strip().splitlines()
    return [tuple(part.strip() for part in line.split("=", 1)) for line in lines]


ALL = [(group, name, target) for group in GROUPS for name, target in entry_points(group)]


@pytest.mark.parametrize("group,name,target", ALL)
def test_registered(group, name, target):
    # spaCy loads the spacy_factories entry points through this registry.
    attr = "_entry_point_factories" if group == "spacy_factories" else group.replace("spacy_", "")
    registry = getattr(spacy.registry, attr)
    func = registry.get(name)
    assert func.__name__ == target.split(":")[1]


def test_factory_known_to_language():
    """A fresh interpreter that never imports spacy_posattn finds the factory
    through the entry point (in this process, earlier tests may have loaded it)."""
    code = (
        "import sys, spacy; nlp = spacy.blank('en'); nlp.add_pipe('posattn_ner'); "
        "print(nlp.pipe_names, 'spacy_posattn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["['posattn_ner']", "True"]


@pytest.mark.parametrize("group", GROUPS)
def test_entry_points_installed(group):
    """The installed distribution exposes the same entry points (so no import is needed)."""
    from importlib.metadata import entry_points as installed

    names = {ep.name for ep in installed(group=group) if ep.value.startswith("spacy_posattn")}
    assert names == {name for name, _ in entry_points(group)}

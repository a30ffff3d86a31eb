"""Every name in setup.cfg's entry points is registered and importable."""
import configparser
from pathlib import Path

import pytest
import spacy

SETUP_CFG = Path(__file__).parent.parent / "setup.cfg"


def entry_points(group: str):
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)
    lines = cfg["options.entry_points"][group].strip().splitlines()
    return [tuple(part.strip() for part in line.split("=", 1)) for line in lines]


@pytest.mark.parametrize("name,target", entry_points("spacy_architectures"))
def test_architectures_registered(name, target):
    func = spacy.registry.architectures.get(name)
    module, attr = target.split(":")
    assert func.__module__ == module and func.__name__ == attr


@pytest.mark.parametrize("name,target", entry_points("spacy_factories"))
def test_factories_registered(name, target):
    assert spacy.registry.factories.get(name).__name__ == target.split(":")[1]
    assert name in spacy.blank("en").factory_names


def test_entry_points_installed():
    """The installed distribution exposes the same entry points (so no import is needed)."""
    from importlib.metadata import entry_points as installed

    for group in ("spacy_architectures", "spacy_factories"):
        names = {ep.name for ep in installed(group=group) if ep.value.startswith("spacy_posattn")}
        assert names == {name for name, _ in entry_points(group)}

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


LINK = re.compile(r"\]\(([^)\s#]*)(?:#([^)\s]+))?\)")


def heading_anchors(text: str):
    """GitHub's anchors for a Markdown file's headings."""
    headings = (line.lstrip("#").strip().lower() for line in text.split("\n") if line.startswith("#"))
    return {re.sub(r"[^\w\- ]", "", h).replace(" ", "-") for h in headings}


def broken_links(doc: Path):
    """Links from `doc` to local files or headings that do not exist."""
    broken = []
    for match in LINK.finditer(doc.read_text(encoding="utf8")):
        target, anchor = match.group(1), match.group(2)
        if target.startswith(("http://", "https://")):
            continue
        path = (doc.parent / target).resolve() if target else doc
        if not path.exists():
            broken.append(match.group(0))
        elif anchor and path.suffix == ".md" and anchor not in heading_anchors(path.read_text(encoding="utf8")):
            broken.append(match.group(0))
    return broken


def test_the_link_check_finds_broken_links(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text("# Top part\n[ok](#top-part) [gone](#nowhere) [file](b.md) [self](a.md#top-part)\n")
    assert broken_links(doc) == ["](#nowhere)", "](b.md)"]


def test_readme_and_results_history_links_resolve():
    """The README's links, and those of the results history it moved there, reach their files and headings."""
    for doc in (README, README.parent / "results" / "HISTORY.md"):
        assert broken_links(doc) == [], doc

"""`make help` lists every target the README and the docs name, each with its `## ` description."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)  # fenced blocks and inline code: prose's "make the..." is not a target
_MAKE = re.compile(r"(?<![\w-])make ([a-z][a-z0-9-]*)(?![\w-])")


def named_targets() -> dict[str, set[str]]:
    """Each target a document names in its code, with the documents that name it."""
    named: dict[str, set[str]] = {}
    for document in DOCUMENTS:
        for code in _CODE.findall(document.read_text()):
            for target in _MAKE.findall(code):
                named.setdefault(target, set()).add(document.relative_to(ROOT).as_posix())
    return named


def listed_by_help() -> dict[str, str]:
    out = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return dict((line.split(None, 1) + [""])[:2] for line in out.splitlines() if line.strip())


def described_in_makefile() -> dict[str, str]:
    text = (ROOT / "Makefile").read_text()
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^([a-z0-9-]+):[^\n#]*## (.*)$", text, re.M)}


def test_the_documents_name_the_commands_they_are_built_around():
    named = named_targets()
    assert {"run", "test", "help", "api-key", "migrate"} <= set(named)  # the parsing finds what is there
    assert "the" not in named and "sure" not in named


def test_every_target_the_documents_name_is_in_make_help_with_a_description():
    listed, described = listed_by_help(), described_in_makefile()
    missing = {t: sorted(where) for t, where in named_targets().items() if t not in listed}
    assert not missing, f"named in the docs but not listed by `make help`: {missing}"
    for target in named_targets():
        assert described.get(target), f"{target} has no `## ` description in the Makefile"
        assert listed[target].strip() == described[target], target

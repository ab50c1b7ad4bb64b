"""The Python code blocks of the site's Markdown pages, as the code-block test runs them.

A block is a fence opened by a line that is exactly ```` ```python ```` at the start of a line
and closed by ```` ``` ````. The line just before a fence (blank lines between are not allowed
there) may say ``<!-- skip: why -->``: that block is shown on the site but not run, and the
reason is required. Python fences that are indented (inside a list) are refused, so that no
block on the site escapes the test by its layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[A-Za-z0-9_+-]*)\s*$")
_SKIP = re.compile(r"^<!--\s*skip:\s*(?P<why>\S.*?)\s*-->\s*$")
_BARE_SKIP = re.compile(r"^<!--\s*skip\b")


@dataclass(frozen=True)
class Block:
    """One fenced Python block: its page, first code line (1-based), code, and skip reason."""

    page: str
    line: int
    code: str
    skip: str | None = None


def pages() -> list[Path]:
    """Every Markdown page of the site (``docs/**/*.md``, without ``docs/_scripts``)."""
    return sorted(p for p in DOCS.rglob("*.md") if "_scripts" not in p.relative_to(DOCS).parts)


def fenced(path: Path, *langs: str) -> list[Block]:
    """Every block fenced as ```` ```lang ```` (``""``: no language) in a Markdown file, in order;
    skip markers are ignored."""
    page = path.relative_to(DOCS).as_posix() if path.is_relative_to(DOCS) else path.name
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if m["lang"] in langs:
            out.append(Block(page, i + 2, "\n".join(lines[i + 1:j]) + "\n"))
        i = j + 1
    return out


def blocks(path: Path) -> list[Block]:
    """The Python blocks of one page, in order.

    Raises
    ------
    ValueError
        For an indented Python fence, a fence never closed, or a skip marker without a reason.
    """
    page = path.relative_to(DOCS).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m or not m["lang"]:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if j == len(lines):
            raise ValueError(f"docs/{page}:{start + 1}: a ```{m['lang']} fence is never closed")
        if m["lang"] == "python":
            if m["indent"]:
                raise ValueError(f"docs/{page}:{start + 1}: an indented ```python fence; put the block at "
                                 "the start of a line so the code-block test runs it")
            prev = lines[start - 1] if start else ""
            skip = _SKIP.match(prev)
            if skip is None and _BARE_SKIP.match(prev):
                raise ValueError(f"docs/{page}:{start}: a skip marker needs a reason: <!-- skip: why -->")
            code = "\n".join(lines[start + 1:j]) + "\n"
            out.append(Block(page, start + 2, code, skip["why"] if skip else None))
        i = j + 1
    return out

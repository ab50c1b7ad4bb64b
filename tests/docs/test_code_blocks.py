"""Every Python code block of the site runs, page by page, as a reader would run it.

The other blocks are checked as what they are: ``toml`` blocks parse (and a report
configuration loads as a :class:`~finar.reporting.ReportConfig` whose models can be created),
``json`` blocks parse, and every ``finar ...`` line of a ``bash`` block names a command the
``finar`` CLI has.

The Python blocks of a page run in order in one namespace (a guide builds on its earlier blocks), in
a fresh working folder, so files a page writes (``gjr.pt``, ``prices.csv``) land there. A block
marked ``<!-- skip: why -->`` is not run; the skipped blocks are listed in
``test_skipped_blocks_are_the_known_ones`` so a new skip is a decision, not an accident.
"""

from __future__ import annotations

import json
import textwrap
import tomllib
from pathlib import Path

import pytest

import finar._estimator
import finar.models
from tests.docs.blocks import DOCS, Block, blocks, fenced, pages

PAGES = pages()
#: the pages with a block to run
RUN = [p for p in PAGES if any(not b.skip for b in blocks(p))]
#: blocks that cannot run in the tests, and why (page -> reasons, in order)
SKIPPED = {
    "guide/data.md": ["needs the network (Yahoo Finance)"],
    "guide/scaling-out.md": ["needs a Ray cluster (a head node's address)",
                             "needs torchrun and several processes"],
    "testing.md": ["the call before the class it checks is defined (it runs below)",
                   "a signature, not code"],
}


def run_page(page: str, todo: list[Block]) -> None:
    namespace: dict[str, object] = {"__name__": f"docs.{page}"}
    for block in todo:
        if block.skip:
            continue
        # the code keeps its line numbers on the page, so a traceback points at the page's line
        source = "\n" * (block.line - 1) + block.code
        try:
            exec(compile(source, f"docs/{page}", "exec"), namespace)
        except Exception as exc:
            code = textwrap.indent(block.code, "    ")
            raise AssertionError(f"docs/{page}, the block at line {block.line} fails:\n"
                                 f"{code}\n{type(exc).__name__}: {exc}") from exc


def test_the_site_has_python_blocks() -> None:
    found = {p.relative_to(DOCS).as_posix(): blocks(p) for p in PAGES}
    assert sum(len(b) for b in found.values()) >= 40
    for page in ("getting-started.md", "guide/models.md", "guide/evaluation.md", "testing.md"):
        assert found[page], page


def test_skipped_blocks_are_the_known_ones() -> None:
    skipped = {p.relative_to(DOCS).as_posix(): [b.skip for b in blocks(p) if b.skip] for p in PAGES}
    assert {k: v for k, v in skipped.items() if v} == SKIPPED


@pytest.mark.parametrize("path", RUN, ids=[p.relative_to(DOCS).as_posix() for p in RUN])
def test_page_code_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # a page that registers a model of its own (testing.md) must not leave it in finar's registry,
    # where the contract tests would pick it up (built-ins first, so none is registered in the copy only)
    finar.models.registry()
    monkeypatch.setattr(finar._estimator, "_REGISTRY", dict(finar._estimator._REGISTRY))
    run_page(path.relative_to(DOCS).as_posix(), blocks(path))


def test_toml_json_and_command_blocks_are_current() -> None:
    from finar.reporting import ReportConfig

    checked = 0
    for path in PAGES:
        for block in fenced(path, "toml"):
            doc = tomllib.loads(block.code)
            if "models" in doc:
                config = ReportConfig.from_dict(doc, source=f"docs/{block.page}:{block.line}")
                for spec in config.models:
                    spec.create()
            checked += 1
        for block in fenced(path, "json"):
            json.loads(block.code)
            checked += 1
    assert checked >= 2


def test_command_lines_name_real_commands() -> None:
    import typer.main

    from finar.cli import app

    commands = set(typer.main.get_command(app).commands)
    named = []
    for path in [*PAGES, DOCS.parent / "README.md"]:
        for block in fenced(path, "bash", "console", ""):  # the command lines shown in fences
            for line in block.code.splitlines():
                words = line.split()
                if len(words) >= 2 and words[0] == "finar" and not words[1].startswith("-"):
                    named.append((path.name, words[1]))
    assert len(named) >= 8
    assert [n for n in named if n[1] not in commands] == []

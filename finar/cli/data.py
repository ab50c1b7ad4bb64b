"""``finar datasets``: the datasets bundled with finar."""

from __future__ import annotations

from rich import box
from rich.markup import escape
from rich.table import Table

from finar.cli._common import stdout
from finar.data import datasets as bundled

__all__ = ["datasets"]


def datasets() -> None:
    """List the datasets bundled with finar (they load offline)."""
    table = Table(title="Bundled datasets (pass the name to --data)", box=box.SIMPLE_HEAD)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("span", no_wrap=True)
    table.add_column("rows", justify="right")
    table.add_column("description and license", overflow="fold")
    for row in bundled().itertuples(index=False):
        table.add_row(escape(row.name), f"{row.start} to {row.end}", f"{row.rows:,}",
                      f"{escape(row.description)}\n[dim]license: {escape(row.license)}[/]")
    stdout().print(table)

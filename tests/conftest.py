"""Shared test helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import finar


@contextmanager
def raises_exactly(cls: type[BaseException], match: str) -> Iterator[pytest.ExceptionInfo]:
    """Like ``pytest.raises(cls, match=...)``, but the error must be ``cls`` itself (not a
    subclass or parent) and a :class:`finar.FinarError`."""
    with pytest.raises(cls, match=match) as info:
        yield info
    assert type(info.value) is cls, f"expected {cls.__name__}, got {type(info.value).__name__}"
    assert isinstance(info.value, finar.FinarError)

"""finar's exceptions and warnings.

Every error a user can cause derives from :class:`FinarError`, so ``except finar.FinarError``
catches all of them. Messages name the problem, the offending rows or values, and what to do.
Non-fatal conditions are warnings of finar's own classes, never prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "FinarError",
    "DataError",
    "MissingColumnsError",
    "UnsortedIndexError",
    "DuplicateTimestampError",
    "FileExistsFinarError",
    "NonPositivePriceError",
    "NonFiniteValueError",
    "MixedTimeZoneError",
    "InvalidTimestampError",
    "SeriesTooShortError",
    "ConstantSeriesError",
    "UnknownDatasetError",
    "DataSourceError",
    "NotFittedError",
    "ModelFileError",
    "LookAheadError",
    "FinarWarning",
    "StaleCacheWarning",
    "ConvergenceWarning",
    "DeviceWarning",
]


def format_rows(rows: Sequence[Any], limit: int = 5) -> str:
    """Render offending row labels as ``a, b, c (and 12 more)`` for error messages."""
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    if len(rows) > limit:
        shown += f" (and {len(rows) - limit} more)"
    return shown


class FinarError(Exception):
    """Base class of every error finar raises on bad input or state."""


class DataError(FinarError, ValueError):
    """Input data that finar cannot use as it is."""


class MissingColumnsError(DataError, KeyError):
    """Required columns are absent."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class UnsortedIndexError(DataError):
    """Timestamps are not in increasing order."""


class DuplicateTimestampError(DataError):
    """The same timestamp appears more than once."""


class NonPositivePriceError(DataError):
    """A price is zero or negative, so a log return is undefined."""


class NonFiniteValueError(DataError):
    """A value is NaN or infinite."""


class MixedTimeZoneError(DataError):
    """Timestamps mix time zones, or mix aware and naive values."""


class InvalidTimestampError(DataError):
    """A timestamp cannot be parsed."""


class SeriesTooShortError(DataError):
    """A series has fewer observations than a model or transform needs."""


class ConstantSeriesError(DataError):
    """A series to fit a model to has the same value on every row."""


class UnknownDatasetError(FinarError, KeyError):
    """A dataset name that finar does not know."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DataSourceError(FinarError, OSError):
    """A remote source (e.g. Yahoo Finance) could not be reached and no cache exists."""


class NotFittedError(FinarError, AttributeError):
    """A model method that needs ``fit`` was called before it."""


class ModelFileError(FinarError, OSError):
    """A saved model file is corrupted, foreign, or from an incompatible version."""


class FileExistsFinarError(FinarError, FileExistsError):
    """An output path exists and overwriting it was not asked for (or it is an input)."""


class LookAheadError(FinarError):
    """A model's forecast for day t changed when data after t changed: it looks ahead."""


class FinarWarning(UserWarning):
    """Base class of finar's warnings."""


class StaleCacheWarning(FinarWarning):
    """A remote source failed and cached data was used instead."""


class ConvergenceWarning(FinarWarning):
    """An optimiser reported that it did not converge."""


class DeviceWarning(FinarWarning):
    """A model file asked for a device this machine lacks and was loaded on the CPU instead."""

"""The data layer: sources (bundled, files, Yahoo Finance), validation and transforms."""

from finar.data.ranges import garman_klass, parkinson, range_measures, rogers_satchell, yang_zhang
from finar.data.sources import datasets, load, read_file
from finar.data.transforms import align, returns, windows
from finar.data.validate import clean_bars, clean_trades, normalize_columns

__all__ = ["datasets", "load", "read_file", "returns", "align", "windows", "clean_bars",
           "clean_trades", "normalize_columns", "parkinson", "garman_klass", "rogers_satchell",
           "yang_zhang", "range_measures"]

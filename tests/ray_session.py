"""A local Ray with 2 CPUs for one test module: starting Ray takes seconds, so once per module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest


def local_ray() -> Iterator[Any]:
    """Yield the ``ray`` module, initialised here unless a session is already running (then kept)."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # silences a Ray FutureWarning
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()

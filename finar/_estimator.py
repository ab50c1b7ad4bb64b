"""The estimator kernel every finar object with parameters and a model file shares.

Forecasters (:mod:`finar.models`), tick models (:mod:`finar.ticks`) and the anomaly detector
follow scikit-learn's rules: ``__init__`` only stores its keyword arguments, validation and work
happen in ``fit``, learned state ends in ``_``. This module gives them, once:

- parameter introspection: ``get_params(deep=...)`` / ``set_params`` with scikit-learn's
  ``outer__inner`` convention for nested settings (a frozen dataclass such as
  :class:`finar.models.training.TrainConfig`, or another estimator), :func:`clone` and ``repr``;
- validation helpers that raise :class:`~finar.errors.DataError` naming the argument;
- one registry of named classes and one model-file format: ``save(path)`` writes
  ``{"model": name, "params": ..., "state": ...}`` with ``torch.save`` and :func:`load` reads any
  finar model file back with ``torch.load(weights_only=True)``, so a file from someone else
  cannot run code.

Examples
--------
>>> import finar
>>> m = finar.models.GARCH(dist="t")
>>> clone(m).get_params() == m.get_params()
True
"""

from __future__ import annotations

import contextvars
import copy
import dataclasses
import importlib
import inspect
import math
import numbers
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from finar._io import atomic_path
from finar.errors import DataError, FinarError, ModelFileError, NotFittedError

__all__ = ["Estimator", "clone", "register", "registry", "create", "load", "write_model_file",
           "read_model_file", "rebuild", "plain", "check_int", "check_number", "check_seed", "check_device",
           "FILE_FORMAT", "FILE_VERSION"]

FILE_FORMAT = "finar-model"
FILE_VERSION = 2  # 2: any registered estimator (forecasters, tick models, detectors); nested params

# Built-in classes register when their module is imported; this table lets the registry find
# them without importing torch for a user who only needs GARCH.
_BUILTIN: dict[str, str] = {
    "ar": "finar.models.ar",
    "garch": "finar.models.garch",
    "garchx": "finar.models.garchx",
    "realgarch": "finar.models.realized",
    "copula": "finar.models.copula",
    "dcc": "finar.models.dcc",
    "neuraldcc": "finar.models.neural_dcc",
    "marginalcopula": "finar.models.marginal_copula",
    "ensemble": "finar.models.ensemble",
    "wavenet": "finar.models.wavenet",
    "transformer": "finar.models.transformer",
    "pixelcnn": "finar.models.pixelcnn",
    "tickmodel": "finar.ticks.model",
    "hawkes": "finar.ticks.baselines",
    "acd": "finar.ticks.baselines",
    "seasonalpoisson": "finar.ticks.baselines",
    "markovhawkes": "finar.ticks.markov",
    "anomalydetector": "finar.anomaly",
}
_REGISTRY: dict[str, type[Estimator]] = {}
E = TypeVar("E", bound="type[Estimator]")


# ---- validation helpers ----------------------------------------------------------------------
def check_int(name: str, value: Any, least: int = 1) -> int:
    """``value`` as an int ``>= least`` (bools and non-integral floats refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or int(value) != value:
        raise DataError(f"{name} must be an integer >= {least}, got {value!r}")
    if int(value) < least:
        raise DataError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)


def check_number(name: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(`` / ``)`` where ``*_open``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        lo, hi = ("(" if low_open else "[") + f"{low:g}", f"{high:g}" + (")" if high_open else "]")
        raise DataError(f"{name} must be a finite number in {lo}, {hi}, got {value!r}")
    return float(value)


def check_date(value: Any, name: str) -> Any:
    """``value`` as a ``pandas.Timestamp``, or a DataError naming ``name`` and the value.

    >>> check_date("2015-01-02", "start").year
    2015
    """
    import pandas as pd

    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name} must be a date such as '2015-01-01', got {value!r} ({exc})") from None
    if stamp is pd.NaT:
        raise DataError(f"{name} must be a date such as '2015-01-01', got {value!r}")
    return stamp


def check_seed(seed: Any, name: str = "seed") -> int | None:
    """A seed for ``numpy.random.SeedSequence``: ``None`` or an integer ``>= 0``."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise DataError(f"{name} must be None or an integer >= 0, got {seed!r}")
    return int(seed)


def check_device(device: Any) -> str:
    """A torch device string that exists on this machine (``'cpu'``, ``'cuda'``, ``'cuda:1'``, ``'mps'``)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DataError(f"device {device!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:N'") from exc
    if dev.type == "cuda":
        n = torch.cuda.device_count()
        if n == 0:
            raise DataError(f"device {device!r}: this machine has no CUDA GPU; use device='cpu'")
        if dev.index is not None and dev.index >= n:
            raise DataError(f"device {device!r}: this machine has {n} CUDA GPU(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise DataError(f"device {device!r}: MPS is not available here; use device='cpu'")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise DataError(f"device {device!r} is not supported; use 'cpu', 'cuda' or 'cuda:N'")
    return str(device)


# ---- serialisable values -----------------------------------------------------------------------
def plain(value: Any) -> Any:
    """Plain Python (dicts, lists, numbers, strings, None) for model files; dataclasses become dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _nested_params(value: Any) -> dict[str, Any] | None:
    """The settings of a nested value (a dataclass or an estimator), or None for a plain value."""
    if isinstance(value, Estimator):
        return value.get_params(deep=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return None


def _replace_nested(value: Any, changes: dict[str, Any], owner: str, name: str) -> Any:
    if isinstance(value, Estimator):
        return clone(value).set_params(**changes)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        valid = {f.name for f in dataclasses.fields(value)}
        unknown = sorted(set(changes) - valid)
        if unknown:
            raise DataError(f"{owner}.{name} has no setting {unknown[0]!r}; settings are {sorted(valid)}")
        return dataclasses.replace(value, **changes)
    raise DataError(f"{owner}.{name} is {value!r}, which has no nested settings "
                    f"({name}__... needs a config object there)")


# ---- the kernel ---------------------------------------------------------------------------------
class Estimator:
    """Parameters, ``repr``, fitted-state checks and model files for every finar estimator."""

    registry_name: ClassVar[str] = ""

    def __setattr__(self, name: str, value: Any) -> None:
        # a device parameter is checked where it is given (construction, set_params), so that
        # device="bogus" fails at once and not after minutes of data preparation; unpickling and
        # copying restore __dict__ directly, so a model built on a GPU machine still unpickles
        if name == "device" and name in self._param_names():
            check_device(value)
        super().__setattr__(name, value)

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments; with ``deep`` also each nested setting as ``outer__inner``.

        ``clone`` rebuilds an equal estimator from ``get_params(deep=False)``, and
        ``set_params(**get_params(deep=True))`` changes nothing (scikit-learn's conventions, so
        ``finar.tune`` grids can name e.g. ``train__lr``).
        """
        out = {name: getattr(self, name) for name in self._param_names()}
        if deep:
            for name, value in list(out.items()):
                for key, inner in (_nested_params(value) or {}).items():
                    out[f"{name}__{key}"] = inner
        return out

    def set_params(self, **params: Any) -> Estimator:
        """Set constructor arguments (``outer__inner`` for nested settings); refit afterwards."""
        valid = self._param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            outer, _, inner = key.partition("__")
            if outer not in valid:
                raise DataError(f"{type(self).__name__} has no parameter {outer!r}; parameters are {valid}")
            if inner:
                nested.setdefault(outer, {})[inner] = value
            else:
                setattr(self, outer, value)
        for outer, changes in nested.items():
            setattr(self, outer, _replace_nested(getattr(self, outer), changes, type(self).__name__, outer))
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        shown = []
        for name, value in self.get_params(deep=False).items():
            default = sig.parameters[name].default
            try:
                same = bool(default is not inspect.Parameter.empty and default == value)
            except Exception:  # e.g. arrays
                same = False
            if not same:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    # ---- fitted state --------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def _check_fitted(self, what: str = "") -> None:
        if not self.is_fitted:
            verb = f" before {what}" if what else ""
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(...) first{verb}")

    # ---- model files ---------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        """Learned state as plain values and tensors (what ``weights_only`` loading allows)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be saved")

    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore learned state written by :meth:`_get_state`."""
        raise NotImplementedError(f"{type(self).__name__} cannot be loaded")

    def _to_device(self, device: str) -> None:
        """Move loaded tensors/networks to ``device`` (estimators with a ``device`` parameter)."""

    def _check_state(self) -> None:
        """Check loaded state against the parameters (raise KeyError/ValueError/... on a mismatch).

        Called by :func:`load` after :meth:`_set_state`, so a file whose parameters contradict
        its learned state fails there, not at the first use of the model."""

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the fitted estimator to ``path`` atomically; read it back with :func:`finar.models.load`.

        An existing file is replaced only with ``overwrite=True``
        (:class:`~finar.errors.FileExistsFinarError` otherwise, the file left as it was).
        """
        self._check_fitted("save")
        if not self.registry_name or _REGISTRY.get(self.registry_name) is not type(self):
            raise FinarError(f"{type(self).__name__} is not registered, so its file could not be "
                             "loaded again; decorate the class with finar.models.register(name)")
        return write_model_file(path, {"model": self.registry_name,
                                       "params": plain(self.get_params(deep=False)),
                                       "state": self._get_state()}, overwrite=overwrite)


def clone(est: Estimator) -> Estimator:
    """A new, unfitted estimator with equal parameters (deep copies, so the two never share state)."""
    if not isinstance(est, Estimator):
        raise DataError(f"clone needs a finar estimator, got {type(est).__name__}")
    return type(est)(**{k: copy.deepcopy(v) for k, v in est.get_params(deep=False).items()})


# ---- the registry -----------------------------------------------------------------------------
def register(name: str) -> Callable[[E], E]:
    """Class decorator adding an estimator to the registry under ``name``.

    Registered classes are loadable by :func:`load` and creatable by :func:`create` and the CLI;
    registered forecasters run through the contract suite (:func:`finar.testing.check_forecaster`).
    """
    def deco(cls: E) -> E:
        key = name.lower()
        if key in _REGISTRY and _REGISTRY[key].__qualname__ != cls.__qualname__:
            raise FinarError(f"a model is already registered as {key!r}: {_REGISTRY[key]}")
        cls.registry_name = key
        _REGISTRY[key] = cls
        return cls

    return deco


def _lookup(name: str) -> type[Estimator] | None:
    key = name.lower()
    if key not in _REGISTRY and key in _BUILTIN:
        importlib.import_module(_BUILTIN[key])
    return _REGISTRY.get(key)


def registry(kind: type | None = None) -> dict[str, type[Estimator]]:
    """Registered classes by name (importing the built-in ones); ``kind`` keeps subclasses of it."""
    for module in sorted(set(_BUILTIN.values())):
        importlib.import_module(module)
    return {k: v for k, v in _REGISTRY.items() if kind is None or issubclass(v, kind)}


def create(name: str, **params: Any) -> Estimator:
    """Instantiate a registered class by name, e.g. ``create("garch", dist="t")``."""
    cls = _lookup(str(name))
    if cls is None:
        raise FinarError(f"unknown model {name!r}; registered models: {sorted(registry())}")
    return cls(**params)


def write_model_file(path: str | os.PathLike[str], content: dict[str, Any], *, fmt: str = FILE_FORMAT,
                     version: int = FILE_VERSION, overwrite: bool = False) -> Path:
    """Write ``content`` (plain values and tensors) with ``torch.save``, atomically, under a header:
    the format marker ``fmt``, the file ``version`` and the finar version. An existing file is
    replaced only with ``overwrite=True``."""
    import torch

    from finar._version import __version__

    payload = {"format": fmt, "file_version": version, "finar_version": __version__, **content}
    with atomic_path(path, overwrite=overwrite) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_model_file(path: str | os.PathLike[str], *, fmt: str = FILE_FORMAT, version: int = FILE_VERSION,
                    what: str = "finar model", device: str = "cpu") -> dict[str, Any]:
    """The payload of a file written by :func:`write_model_file`, read with
    ``torch.load(weights_only=True, map_location=device)`` and checked: marker ``fmt``, file
    version at most ``version``.

    Raises :class:`~finar.errors.ModelFileError` if the file is missing, unreadable, not a ``what``
    or from a newer file version.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"model file not found: {str(p)!r}")
    try:
        payload = torch.load(p, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types on foreign or damaged bytes
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ModelFileError(f"{str(p)!r} is not a readable {what} file (corrupted, truncated, or written "
                             f"by another program): {type(exc).__name__}: {first}") from exc
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise ModelFileError(f"{str(p)!r} is a torch file but not a {what}")
    if not isinstance(payload.get("file_version"), int) or payload["file_version"] > version:
        raise ModelFileError(f"{str(p)!r} uses model file version {payload.get('file_version')!r} (finar "
                             f"{payload.get('finar_version')}); this finar reads up to version {version}: "
                             "upgrade finar")
    return payload


def load(path: str | os.PathLike[str], device: str | None = None) -> Estimator:
    """Load any finar model file (forecaster, tick model, detector), safely.

    Parameters
    ----------
    path : str or path
        A file written by ``save``.
    device : str, optional
        Where the saved tensors go (``'cpu'``, ``'cuda'``...; ``map_location`` of ``torch.load``)
        and, for estimators with a ``device`` parameter, where they run from now on. Default:
        the tensors go to the CPU and the saved ``device`` is kept where this machine has it; a
        file saved on a GPU loads on a CPU-only machine, set to ``'cpu'`` with a
        :class:`~finar.errors.DeviceWarning`.

    Raises
    ------
    ModelFileError
        If the file is missing, corrupted, not a finar model, from a newer format, or its
        parameters or state do not match its class or each other.
    DataError
        If ``device`` is not a device of this machine.
    """
    p = Path(path)
    target = "cpu" if device is None else check_device(device)
    payload = read_model_file(p, device=target)
    if "state" not in payload:
        raise ModelFileError(f"{str(p)!r}: the learned state is missing; was the file written by finar?")
    token = _LOADING.set((device, target, p))
    try:
        est = rebuild(payload.get("model"), payload.get("params"))
        try:
            est._set_state(payload["state"])
            est._check_state()
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError, FinarError) as exc:
            raise ModelFileError(f"{str(p)!r}: the model state does not match its parameters: "
                                 f"{type(exc).__name__}: {_first_line(exc)}") from exc
    finally:
        _LOADING.reset(token)
    return est


#: while :func:`load` runs: (the ``device`` asked for, where tensors go, the file), for nested models
_LOADING: contextvars.ContextVar[tuple[str | None, str, Path] | None] = contextvars.ContextVar(
    "finar_loading", default=None)


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else ""


def rebuild(name: Any, params: Any) -> Estimator:
    """An unfitted estimator from a model file's ``model`` name and ``params``, checked.

    :func:`load` builds the file's estimator with it, and ensembles and detectors their nested
    models, so that every model of a file gets the same checks and the ``device`` given to
    :func:`load`. Raises :class:`~finar.errors.ModelFileError` on an unknown name or parameters
    that do not match the class.
    """
    device, target, p = _LOADING.get() or (None, "cpu", Path("<model file>"))
    cls = _lookup(name) if isinstance(name, str) else None
    if cls is None:
        raise ModelFileError(f"{str(p)!r} holds an unknown model {name!r}; known: {sorted(registry())}")
    if not isinstance(params, dict):
        raise ModelFileError(f"{str(p)!r}: the parameters of {cls.__name__} are damaged (not a mapping)")
    expected = set(cls._param_names())
    defaults = {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items()
                if v.default is not inspect.Parameter.empty}
    # a file written before a setting was added: the value that keeps the old model (only the
    # settings a class lists as added; any other missing setting means a damaged file)
    params = {**getattr(cls, "_added_params", {}), **params}
    # JSON has no tuples: a setting whose default is a tuple comes back as one
    params = {k: tuple(v) if isinstance(defaults.get(k), tuple) and isinstance(v, list) else v
              for k, v in params.items()}
    extra, missing = sorted(set(params) - expected), sorted(expected - set(params))
    if extra or missing:
        raise ModelFileError(f"{str(p)!r}: parameters do not match {cls.__name__} "
                             f"(unexpected {extra}, missing {missing}); was it written by another finar?")
    if "device" in expected:
        params = {**params, "device": _load_device(params["device"], device, target, p)}
    try:
        return cls(**params)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError, FinarError) as exc:
        raise ModelFileError(f"{str(p)!r}: the parameters of {cls.__name__} are invalid: "
                             f"{type(exc).__name__}: {_first_line(exc)}") from exc


def _load_device(saved: Any, device: str | None, target: str, path: Path) -> Any:
    """The ``device`` parameter of a loaded estimator: ``device`` when given, else the saved one
    if this machine has it, else the CPU (with a warning)."""
    if device is not None:
        return target
    try:
        check_device(saved)
    except DataError as exc:
        import warnings

        from finar.errors import DeviceWarning

        warnings.warn(f"{str(path)!r} was saved for device {saved!r}, which is not usable here ({exc}); "
                      "loaded on 'cpu' (pass device= to choose)", DeviceWarning, stacklevel=3)
        return "cpu"
    return saved

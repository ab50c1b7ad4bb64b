"""Fan-out of independent tasks: in this process, on local joblib workers, or as Ray tasks.

Backtests (one task per asset and refit block), scenario generation over many assets, the
stylized facts of several generators and anomaly runs are sets of independent tasks. finar hands
them to an *executor*:

- ``"serial"`` (the default): one after the other, in this process;
- ``"joblib"``: joblib's process pool on this machine (:class:`JoblibExecutor` sets ``n_jobs``);
- ``"ray"``: Ray tasks (:class:`RayExecutor`), on the cluster named by ``address`` or by the
  ``RAY_ADDRESS`` environment variable, else on a local Ray started on first use and kept for
  later calls; a Ray session the caller started with ``ray.init`` is used as it is;
- or an object: an executor instance above, or any :class:`concurrent.futures.Executor`
  (a ``ProcessPoolExecutor``, dask's ``client.get_executor()``).

Results do not depend on the executor. Tasks take their seeds from their inputs (derive them
with :func:`task_seed`, never from global RNG state), and every task runs with one BLAS/OpenMP
thread (``threads=1``), as joblib's and Ray's workers do anyway: a different thread count changes
the order of floating-point sums, so serial and parallel runs would differ in the last digits.

Failures. A task that raises is retried ``retries`` times, except for
:class:`~finar.errors.FinarError`, which names bad input and would fail again; on Ray a task
whose worker dies is also resubmitted up to ``retries`` times. Every other task still runs to
the end. If any task failed, :func:`run_tasks` raises :class:`TaskError`, whose message names the
failed tasks (by asset, refit date, ...) and which carries the other tasks' ``results`` and a
``failures`` table: nothing computed is lost, and no result is silently missing downstream.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import logging
import os
import pickle
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from finar._progress import progress_bar
from finar.errors import DataError, FinarError, format_rows

__all__ = ["run_tasks", "task_seed", "sample_assets", "init_ray", "TaskError", "SerialExecutor",
           "JoblibExecutor", "RayExecutor", "resolve_executor", "ExecutorLike"]

logger = logging.getLogger("finar.executors")

ExecutorLike = Literal["serial", "joblib", "ray"] | Any


class TaskError(FinarError):
    """Some tasks failed after their retries; the others' results are kept.

    Attributes
    ----------
    results : dict
        ``name -> result`` of the tasks that succeeded, in the order of the items.
    failures : DataFrame
        Indexed by task ``name``: ``error`` (exception class), ``message``, ``attempts``,
        ``traceback`` (as formatted in the worker).
    exceptions : dict
        ``name -> exception`` as raised in the worker (re-raise one to keep its type).
    """

    def __init__(self, message: str, results: dict[str, Any], failures: pd.DataFrame,
                 exceptions: dict[str, BaseException]) -> None:
        super().__init__(message)
        self.results, self.failures, self.exceptions = results, failures, exceptions

    def __reduce__(self) -> tuple:  # picklable, e.g. when a Ray task itself fans out
        return type(self), (str(self), self.results, self.failures, self.exceptions)


def task_seed(seed: int, name: str) -> int:
    """A 32-bit seed for the task called ``name``, derived from ``seed`` alone.

    It depends on the task's name, not on its position or on the other tasks, so an asset gets
    the same random numbers whichever assets run with it, and on any executor.

    Examples
    --------
    >>> task_seed(0, "AAPL") == task_seed(0, "AAPL") != task_seed(0, "MSFT")
    True
    """
    digest = int.from_bytes(hashlib.sha256(str(name).encode()).digest()[:8], "little")
    return int(np.random.SeedSequence([int(seed), digest]).generate_state(1)[0])


# --- one attempt-with-retries, run wherever the executor puts it ------------------------------------

@dataclass
class _Outcome:
    index: int
    value: Any = None
    error: BaseException | None = None
    trace: str = ""
    attempts: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class _Task:
    """``fn(item, **common)`` with retries and a thread limit; picklable for workers."""

    fn: Callable[..., Any]
    retries: int
    threads: int | None
    common_keys: tuple[str, ...] = ()

    def __call__(self, index: int, name: str, item: Any, *common: Any) -> _Outcome:
        kwargs = dict(zip(self.common_keys, common, strict=True))
        out, t0 = _Outcome(index), time.perf_counter()
        for attempt in range(1, self.retries + 2):
            out.attempts = attempt
            try:
                with _thread_limit(self.threads):
                    out.value = self.fn(item, **kwargs)
                out.error, out.trace = None, ""
                break
            except Exception as exc:
                out.error, out.trace = _picklable(exc), traceback.format_exc()
                logger.warning("task %s failed (attempt %d of %d): %s: %s", name, attempt, self.retries + 1,
                               type(exc).__name__, exc)
                if isinstance(exc, FinarError):  # bad input: another attempt would fail the same way
                    break
        out.seconds = time.perf_counter() - t0
        return out


def _thread_limit(threads: int | None) -> contextlib.AbstractContextManager:
    """threadpoolctl's limit (BLAS and OpenMP, torch's included) for one task; ``None``: no limit."""
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def _picklable(exc: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # an exception that cannot travel back from a worker: keep its text
        return RuntimeError(f"{type(exc).__name__}: {exc}")


# --- the executors ---------------------------------------------------------------------------------

Job = tuple[int, str, Any]  # (index, name, item)


class SerialExecutor:
    """Runs tasks one after the other in this process."""

    def imap(self, task: _Task, jobs: Sequence[Job], common: Sequence[Any]) -> Iterator[_Outcome]:
        for i, name, item in jobs:
            yield task(i, name, item, *common)

    def __repr__(self) -> str:
        return "SerialExecutor()"


@dataclass
class JoblibExecutor:
    """joblib's process pool on this machine.

    Parameters
    ----------
    n_jobs : int, default -1
        Worker processes (-1: one per core).
    backend : str, optional
        joblib backend (default ``"loky"``).
    """

    n_jobs: int = -1
    backend: str | None = None

    def imap(self, task: _Task, jobs: Sequence[Job], common: Sequence[Any]) -> Iterator[_Outcome]:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=self.n_jobs, backend=self.backend, return_as="generator_unordered")
        yield from parallel(delayed(task)(i, name, item, *common) for i, name, item in jobs)


@dataclass
class RayExecutor:
    """Ray tasks, one per item, named ``"<description>:<name>"`` in Ray's dashboard and logs.

    Parameters
    ----------
    address : str, optional
        Cluster to connect to (``"auto"``, ``"ray://head:10001"``, ...); ``None`` uses the
        ``RAY_ADDRESS`` environment variable if set, else starts a local Ray. Ignored when Ray is
        already initialised in this process.
    num_cpus : float, default 1
        CPUs reserved per task.
    init_kwargs : dict, optional
        More arguments of ``ray.init`` (e.g. ``num_cpus`` of a local Ray, ``runtime_env``).

    Notes
    -----
    finar (with the ``ray`` extra) must be importable on every node. Arguments shared by all
    tasks (``common`` in :func:`run_tasks`) are put in Ray's object store once. Ray started
    here keeps running for later calls; ``ray.shutdown()`` stops it.
    """

    address: str | None = None
    num_cpus: float = 1
    init_kwargs: dict[str, Any] = field(default_factory=dict)

    def imap(self, task: _Task, jobs: Sequence[Job], common: Sequence[Any],
             description: str = "finar") -> Iterator[_Outcome]:
        ray = init_ray(self.address, **self.init_kwargs)
        remote = ray.remote(_run_remote)
        refs = [ray.put(v) for v in common]
        task_ref = ray.put(task)
        pending = {}
        for i, name, item in jobs:
            ref = remote.options(name=f"{description}:{name}", num_cpus=self.num_cpus,
                                 max_retries=task.retries).remote(task_ref, i, name, item, *refs)
            pending[ref] = i
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(ready[0])
            try:
                yield ray.get(ready[0])
            except Exception as exc:  # the worker died (or Ray failed) after its retries
                yield _Outcome(i, error=_picklable(exc), trace=str(exc), attempts=task.retries + 1)


def _run_remote(task: _Task, index: int, name: str, item: Any, *common: Any) -> _Outcome:
    return task(index, name, item, *common)


def init_ray(address: str | None = None, **init_kwargs: Any) -> Any:
    """The ``ray`` module, initialised: connected to ``address`` (or ``RAY_ADDRESS``), else a local Ray.

    A Ray session already initialised in this process is used as it is. Worker logs are not
    forwarded to this process unless ``log_to_driver=True``.
    """
    try:
        import ray
    except ImportError as exc:
        raise FinarError("Ray is not installed; pip install 'finar[ray]' (or 'finar[tune]')") from exc
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        logger.info("starting Ray (%s)", address or "local")
        ray.init(address=address, **{"log_to_driver": False, **init_kwargs})
    return ray


@dataclass
class _FuturesExecutor:
    pool: concurrent.futures.Executor

    def imap(self, task: _Task, jobs: Sequence[Job], common: Sequence[Any]) -> Iterator[_Outcome]:
        futures = {self.pool.submit(task, i, name, item, *common): i for i, name, item in jobs}
        for future in concurrent.futures.as_completed(futures):
            try:
                yield future.result()
            except Exception as exc:  # the pool itself failed (e.g. a worker process died)
                yield _Outcome(futures[future], error=_picklable(exc), trace=traceback.format_exc(),
                               attempts=1)


def resolve_executor(executor: ExecutorLike = "serial", n_jobs: int | None = None) -> Any:
    """The executor object for ``"serial"``, ``"joblib"`` (``n_jobs`` workers), ``"ray"`` or an object.

    Examples
    --------
    >>> resolve_executor("joblib", n_jobs=2)
    JoblibExecutor(n_jobs=2, backend=None)
    """
    if isinstance(executor, str):
        makers = {"serial": SerialExecutor, "joblib": lambda: JoblibExecutor(n_jobs or -1),
                  "ray": RayExecutor}
        if executor not in makers:
            raise DataError(f"executor must be 'serial', 'joblib', 'ray' or an executor object; "
                            f"got {executor!r}")
        return makers[executor]()
    if isinstance(executor, concurrent.futures.Executor):
        return _FuturesExecutor(executor)
    if not callable(getattr(executor, "imap", None)):
        raise DataError(f"executor must be 'serial', 'joblib', 'ray', a finar executor or a "
                        f"concurrent.futures.Executor; got {type(executor).__name__}")
    return executor


def run_tasks(fn: Callable[..., Any], items: Iterable[Any], *, executor: ExecutorLike = "serial",
              names: Sequence[str] | None = None, common: Mapping[str, Any] | None = None, retries: int = 1,
              threads: int | None = 1, progress: bool = True, description: str = "tasks") -> list[Any]:
    """``[fn(item, **common) for item in items]``, each call a task on ``executor``.

    Parameters
    ----------
    fn : callable
        A module-level function (workers import it by name) of one item plus the ``common``
        keyword arguments. Its randomness must come from its arguments (see :func:`task_seed`).
    items : iterable
        One task per item.
    executor : 'serial', 'joblib', 'ray' or executor object
        Where the tasks run (module docstring).
    names : sequence of str, optional
        Unique task names (e.g. the asset, or ``"AAPL/2015-01-02"`` for a refit block), used in
        progress, logs, Ray's task names and failure reports; default ``"0", "1", ...``.
    common : mapping, optional
        Keyword arguments passed to every call; Ray ships each to its object store once.
    retries : int, default 1
        Further attempts of a task that raised something other than a ``FinarError``.
    threads : int or None, default 1
        BLAS/OpenMP threads per task; ``None`` leaves the process' setting.
    progress : bool, default True
        A progress bar on stderr over completed tasks (on a terminal only).
    description : str
        Label of the progress bar and prefix of Ray's task names.

    Returns
    -------
    list
        The results in the order of ``items``, whichever order the tasks finished in.

    Raises
    ------
    TaskError
        If any task failed after its retries; it names them and carries the others' results.

    Examples
    --------
    >>> run_tasks(abs, [-1, 2, -3], progress=False)
    [1, 2, 3]
    >>> try:
    ...     run_tasks(int, ["1", "x", "3"], names=["a", "b", "c"], retries=0, progress=False)
    ... except TaskError as err:
    ...     print(sorted(err.results.items()), list(err.failures.index))
    [('a', 1), ('c', 3)] ['b']
    """
    items = list(items)
    names = [str(i) for i in range(len(items))] if names is None else [str(n) for n in names]
    if len(names) != len(items):
        raise DataError(f"names has {len(names)} entries for {len(items)} items; pass one name per item")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"task names must be unique; repeated: {format_rows(dup)}")
    if isinstance(retries, bool) or not isinstance(retries, int | np.integer) or retries < 0:
        raise DataError(f"retries must be an integer >= 0; got {retries!r}")
    if threads is not None and (not isinstance(threads, int | np.integer) or threads < 1):
        raise DataError(f"threads must be a positive integer or None; got {threads!r}")
    common = dict(common or {})
    task = _Task(fn, int(retries), threads, tuple(common))
    runner = resolve_executor(executor)
    jobs = [(i, n, item) for i, (n, item) in enumerate(zip(names, items, strict=True))]
    if isinstance(runner, RayExecutor):
        stream = runner.imap(task, jobs, list(common.values()), description=description)
    else:
        stream = runner.imap(task, jobs, list(common.values()))
    outcomes: list[_Outcome | None] = [None] * len(items)
    for out in progress_bar(stream, total=len(jobs), enabled=progress, description=description):
        outcomes[out.index] = out
    failed = [o for o in outcomes if o is None or o.error is not None]
    if not failed:
        return [o.value for o in outcomes]  # type: ignore[union-attr]
    results = {names[o.index]: o.value for o in outcomes if o is not None and o.error is None}
    failures = pd.DataFrame(
        [{"name": names[o.index], "error": type(o.error).__name__, "message": str(o.error),
          "attempts": o.attempts, "traceback": o.trace} for o in failed if o is not None],
        columns=["name", "error", "message", "attempts", "traceback"]).set_index("name")
    exceptions = {names[o.index]: o.error for o in failed if o is not None and o.error is not None}
    shown = "; ".join(f"{n} ({row.error}: {row.message})" for n, row in failures.head(5).iterrows())
    more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
    raise TaskError(f"{len(failures)} of {len(items)} {description} failed after {retries} "
                    f"retr{'y' if retries == 1 else 'ies'}: {shown}{more}. The other results are in "
                    ".results, the failures in .failures", results, failures, exceptions
                    ) from next(iter(exceptions.values()), None)


# --- scenario generation over many assets -------------------------------------------------------------

def _sample_asset(item: tuple, horizon: int, n_paths: int) -> Any:
    from finar.models.base import clone

    model, train, context, seed, x_train, x_context, x_future = item
    m = model if train is None else clone(model).fit(train, **({} if x_train is None else {"exog": x_train}))
    kw = {} if x_context is None else {"exog": x_context, "exog_future": x_future}
    return m.sample(context=context, horizon=horizon, n_paths=n_paths, seed=seed, **kw)


def _rows_of(exog: Any, asset: str, index: pd.Index | None, what: str) -> pd.DataFrame | pd.Series | None:
    """The covariates of ``asset`` (a shared frame, or its entry of a mapping) on the days ``index``."""
    if exog is None or index is None:
        return None
    if isinstance(exog, Mapping):
        if asset not in exog:
            raise DataError(f"{what} has no entry for asset {asset!r}; pass covariates for every column")
        exog = exog[asset]
    missing = index.difference(exog.index)
    if len(missing):
        raise DataError(f"{what} of asset {asset!r} lacks the days {format_rows(missing)}")
    return exog.loc[index]


def sample_assets(model: Any, context: pd.DataFrame, *, horizon: int = 1, n_paths: int = 1000, seed: int = 0,
                  train: pd.DataFrame | None = None, exog: Any = None, exog_future: Any = None,
                  executor: ExecutorLike = "serial", retries: int = 1,
                  progress: bool = True) -> dict[str, Any]:
    """Scenarios for each asset (column) of ``context`` from its own model, one task per asset.

    Parameters
    ----------
    model : Forecaster or mapping
        One forecaster for every asset, or ``{asset: forecaster}`` covering the columns; fitted,
        unless ``train`` is given.
    context : DataFrame
        Returns, one column per asset; each asset's paths follow its non-NaN history.
    horizon, n_paths : int
        As in ``Forecaster.sample``.
    seed : int
        Asset ``a`` samples with ``task_seed(seed, a)``: its paths do not depend on the other
        assets or on the executor.
    train : DataFrame, optional
        Fit a clone of each asset's model on its column first (the given models stay as they are).
    exog, exog_future : DataFrame or mapping, optional
        Covariates, one frame shared by every asset or ``{asset: frame}``: ``exog`` by date,
        covering each asset's ``train`` and ``context`` days (its rows are picked by date);
        ``exog_future`` the rows of the simulated days 2..``horizon`` (as in ``Forecaster.sample``).
    executor, retries, progress
        As in :func:`run_tasks`; a failed asset raises :class:`TaskError` naming it, with the
        other assets' scenarios in ``.results``.

    Returns
    -------
    dict
        ``asset -> finar.Scenarios`` in the column order of ``context``.

    Examples
    --------
    >>> import finar
    >>> r = finar.returns(finar.load("sp500-stocks")[["AAPL", "MSFT"]]).loc["2015":"2018"]
    >>> sc = sample_assets(finar.models.GARCH(dist="t"), r, train=r, horizon=5, n_paths=100, progress=False)
    >>> {a: s.paths.shape for a, s in sc.items()}
    {'AAPL': (100, 5, 1), 'MSFT': (100, 5, 1)}
    """
    if not isinstance(context, pd.DataFrame):
        raise DataError(f"context must be a DataFrame, one column per asset; got {type(context).__name__}")
    assets = [str(c) for c in context.columns]
    models = model if isinstance(model, Mapping) else dict.fromkeys(assets, model)
    missing = [a for a in assets if a not in models] + (
        [] if train is None else [a for a in assets if a not in set(map(str, train.columns))])
    if missing:
        raise DataError(f"no model or training column for assets {format_rows(missing)}; cover every column")
    train_cols = {} if train is None else {str(c): train[c].dropna() for c in train.columns}
    items = []
    for a, c in zip(assets, context.columns, strict=True):
        ctx, fit_on = context[c].dropna(), train_cols.get(a)
        future = exog_future[a] if isinstance(exog_future, Mapping) else exog_future
        items.append((models[a], fit_on, ctx, task_seed(seed, a),
                      _rows_of(exog, a, None if fit_on is None else fit_on.index, "exog"),
                      _rows_of(exog, a, ctx.index, "exog"), None if exog is None else future))
    out = run_tasks(_sample_asset, items, executor=executor, names=assets, retries=retries, progress=progress,
                    common={"horizon": int(horizon), "n_paths": int(n_paths)}, description="sample")
    return dict(zip(assets, out, strict=True))

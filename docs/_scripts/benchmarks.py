"""mkdocs hook: the benchmark tables of the site, generated from ``benchmarks/results/*.json`` at build time.

A page asks for the table of one results file with a marker on a line of its own::

    <!-- results: p1_sp500_daily -->

and the build replaces it with a Markdown table of that file's rows (the columns that matter
for its protocol, in its rows' order) and a line saying which command wrote it, when and on
what machine. ``<!-- results: p1_sp500_daily strategies -->`` shows another list of records
of the file (here the volatility-targeting strategies) with all its columns. Nothing is copied
by hand, so the page always says what the committed results say. The build fails (a warning,
and ``mkdocs build --strict``) when a marker names a file or a list that does not exist, and
when a results file has no marker on any page: a new benchmark must get a place on the site.

Tables per protocol (``protocol`` of the file; the row keys are those of the protocol page):

- P1: log score, CRPS, VaR hit rates with their Kupiec p-values, Christoffersen's conditional
  coverage p-value, the traffic light, the Diebold-Mariano t against GARCH(1,1)-t, and whether
  the row equals the hand-written arch loop run beside it (whose own rows are then left out);
- P2 and P3: the mean over seeds of each model (P2's ``seed: "mean"`` rows as recorded; P3's
  means computed here from the per-seed rows, with the real series' facts on its own row);
- P4: AUROC per detector and anomaly kind (a pivot of the rows), and the false-alarm rate;
- P1m: one row per series, one column per model: GARCH(1,1)-t's mean log score, and for every
  other model its gain over GARCH-t in nats/day with the Diebold-Mariano t in brackets ("n/a"
  where the model does not apply, "missing" where the run has not scored it);
- P5, P6, panel, scale-out and speed files: their own row keys.

Any other protocol gets every scalar column of its rows.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.plugins.finar.benchmarks")

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
MARKER = re.compile(r"^<!--\s*results:\s*([A-Za-z0-9_.-]+)(?:\s+([A-Za-z0-9_]+))?\s*-->\s*$", flags=re.M)

Row = dict[str, Any]


# ---- formatting ----------------------------------------------------------------------------------
def fmt(value: Any, spec: str = "") -> str:
    """One table cell: ``spec`` is a format (``.4f``), ``%`` (a rate in percent) or empty (auto)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and spec == "%":
        return f"{100 * value:.2f}%"
    if isinstance(value, int | float) and spec:
        return format(value, spec)
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 1e4 else str(value)
    return str(value).replace("|", "\\|")


def table(rows: Sequence[Row], columns: Sequence[tuple[str, str, str]]) -> str:
    """A Markdown table of ``rows``: ``columns`` are (key, header, format) triples."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(fmt(r.get(k), f) for k, _, f in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def _mean(values: Sequence[Any]) -> float | None:
    xs = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]
    return sum(xs) / len(xs) if xs else None


def seed_means(rows: Sequence[Row], key: str = "model") -> list[Row]:
    """Per ``key``, in order of appearance, the mean of every numeric column over its seeded rows;
    rows without a seed (e.g. the real series) are kept as they are."""
    order: list[str] = []
    groups: dict[str, list[Row]] = {}
    out: list[Row] = []
    for r in rows:
        if r.get("seed") is None:
            out.append(dict(r))
            continue
        if r[key] not in groups:
            order.append(r[key])
            groups[r[key]] = []
        groups[r[key]].append(r)
    for name in order:
        g = groups[name]
        merged: Row = {key: name, "kind": g[0].get("kind"), "seeds": len(g)}
        for col in g[0]:
            if col not in merged and col != "seed":
                merged[col] = _mean([r.get(col) for r in g])
        out.append(merged)
    return out


def pivot(rows: Sequence[Row], index: str, columns: str, value: str) -> tuple[list[Row], list[str]]:
    """Rows ``index`` x columns ``columns`` of ``value``, both in order of appearance."""
    out: dict[str, Row] = {}
    kinds: list[str] = []
    for r in rows:
        out.setdefault(r[index], {index: r[index]})[r[columns]] = r.get(value)
        if r[columns] not in kinds:
            kinds.append(r[columns])
    return list(out.values()), kinds


# ---- one renderer per protocol -------------------------------------------------------------------
Columns = list[tuple[str, str, str]]  # (row key, header, format)

P1_COLUMNS: Columns = [
    ("model", "model", ""), ("kind", "kind", ""), ("log_score", "log score", ".4f"), ("crps", "CRPS", ".4f"),
    ("hit_1", "1% hits", "%"), ("kupiec_1", "Kupiec p", ".3f"), ("hit_5", "5% hits", "%"),
    ("kupiec_5", "Kupiec p", ".3f"), ("christoffersen_cc_1", "Christoffersen cc p (1%)", ".3f"),
    ("traffic_light", "traffic light", ""), ("dm_vs_garch_t", "DM t vs GARCH-t", ".2f"),
    ("arch_loop", "= arch loop", ""), ("fit_seconds", "fit s", ".1f"),
]
P2_COLUMNS: Columns = [
    ("model", "model", ""), ("kind", "kind", ""), ("gap_nats", "gap to oracle, nats/day", ".4f"),
    ("by_seed", "per seed", ""), ("dm_t", "DM t", ".2f"),
]
P3_COLUMNS: Columns = [
    ("model", "generator", ""), ("kind", "kind", ""), ("seeds", "seeds", ""), ("dy_1", "DY 1", ".1f"),
    ("dy_5", "DY 5", ".1f"), ("dy_20", "DY 20", ".1f"), ("dy_100", "DY 100", ".1f"),
    ("emd_std_1", "EMD 1 (std.)", ".3f"), ("acf_id", "ACF id", ".3f"), ("acf_abs", "ACF abs", ".3f"),
    ("acf_sq", "ACF sq", ".3f"), ("leverage", "leverage", ".3f"), ("kurt_1", "excess kurtosis", ".2f"),
    ("hill_abs", "Hill |r|", ".2f"), ("acf_abs_lag1", "ACF abs lag 1", ".3f"),
]
P4_LOGLIK_COLUMNS: Columns = [
    ("model", "model", ""), ("seed", "seed", ""), ("loglik_per_asset_day", "log-lik per asset-day", ".4f"),
    ("joint_loglik_per_day", "joint log-lik per day", ".3f"), ("dm_vs_garch", "DM t vs GARCH-t", ".2f"),
    ("fit_seconds", "fit s", ".1f"),
]
P5_COLUMNS: Columns = [
    ("model", "model", ""), ("kind", "kind", ""), ("data", "data", ""),
    ("loglik_per_event", "log-lik per trade", ".3f"), ("zero_gap_share_synth", "zero-gap share", ".3f"),
    ("zero_gap_share_real", "(real)", ".3f"), ("dp_acf1_synth", "lag-1 ACF of price changes", ".3f"),
    ("dp_acf1_real", "(real)", ".3f"), ("sign_acf_exponent", "sign-ACF exponent dist.", ".2f"),
    ("signature", "signature-plot dist.", ".2f"), ("auroc", "discriminator AUROC", ".2f"),
]
P6_COLUMNS: Columns = [
    ("model", "model", ""), ("kind", "kind", ""), ("seed", "seed", ""),
    ("joint_log_score", "joint log score", ".3f"), ("dm_t_vs_dcc", "DM t vs DCC", ".2f"),
    ("energy_score_1", "energy score 1d", ".3f"), ("energy_score_20", "energy score 20d", ".3f"),
    ("variogram_score_1", "variogram score 1d", ".3f"),
]
PANEL_COLUMNS: Columns = [
    ("stock", "stock", ""), ("global_transformer", "global Transformer", ".4f"),
    ("garch_t", "GARCH(1,1)-t", ".4f"), ("wavenet", "WaveNet", ".4f"),
    ("diff_vs_garch", "Transformer - GARCH-t", ".4f"), ("dm_vs_garch", "DM t", ".2f"),
    ("stocks_better_than_garch", "stocks better than GARCH-t", ""),
]
SCALEOUT_COLUMNS: Columns = [
    ("model", "work", ""), ("executor", "executor", ""), ("tasks", "tasks", ""), ("wall_s", "wall s", ".1f"),
    ("speedup", "speed-up", ".2f"), ("identical_to_serial", "identical to serial", ""),
]
TAIL_COLUMNS: Columns = [
    ("model", "model", ""), ("seed", "seed", ""), ("kurt_1", "kurt 1d", ".2f"),
    ("inside_kurt_1", "in band", ""),
    ("kurt_20", "kurt 20d", ".2f"), ("inside_kurt_20", "in band", ""), ("hill_left", "Hill left", ".2f"),
    ("inside_hill_left", "in band", ""), ("hill_right", "Hill right", ".2f"),
    ("inside_hill_right", "in band", ""),
    ("max_loss_median", "max loss median", ".2f"), ("max_loss_p99", "max loss p99", ".2f"),
    ("share_beyond_2x", "paths beyond 2x worst", ".3f"), ("drift", "scale drift", ".2f"),
    ("real_pct_kurt_20", "real kurt 20d: share of same-length values below", ".2f"),
]
HORIZON_COLUMNS: Columns = [
    ("model", "model", ""), ("horizon", "h (days)", ""), ("crps", "CRPS", ".4f"),
    ("crps_vs_garch_t", "CRPS - GARCH-t", ".4f"), ("cover_50", "50% coverage", ".3f"),
    ("cover_90", "90% coverage", ".3f"), ("hit_1", "1% VaR hits", ".3f"), ("hit_5", "5% VaR hits", ".3f"),
]
MANY_HORIZON_COLUMNS: Columns = [
    ("model", "model", ""), ("horizon", "h (days)", ""), ("n_series", "series", ""),
    ("median_crps_vs_garch_t", "median CRPS - GARCH-t", ".4f"),
    ("series_below_garch_t", "series below GARCH-t", ""), ("mean_cover_50", "50% coverage", ".3f"),
    ("mean_cover_90", "90% coverage", ".3f"), ("mean_hit_1", "1% VaR hits", ".3f"),
    ("mean_hit_5", "5% VaR hits", ".3f"),
]
SPEED_COLUMNS: Columns = [("name", "measure", ""), ("value", "value", ""), ("unit", "unit", "")]


def _p1(d: dict[str, Any]) -> str:
    # a finar row checked against a hand-written arch loop carries the comparison; the loop's own row
    # (the same figures, when the check passes) is left out of the table
    rows = []
    for r in d["rows"]:
        if str(r.get("model", "")).endswith("(arch loop)"):
            continue
        diff, equal = r.get("reference_log_score_diff"), r.get("reference_hits_equal")
        check = None if diff is None else ("yes" if equal and abs(diff) < 1e-4 else f"no ({diff:+.1e})")
        rows.append({**r, "arch_loop": check})
    return table(rows, P1_COLUMNS)


def _p2(d: dict[str, Any]) -> str:
    rows = [r for r in d["rows"] if r.get("seed") == "mean"] or seed_means(d["rows"])
    per_seed: dict[str, list[str]] = {}
    for r in d["rows"]:
        if isinstance(r.get("seed"), int):
            per_seed.setdefault(r["model"], []).append(f"{r['gap_nats']:.4f}")
    return table([{**r, "by_seed": " / ".join(per_seed.get(r["model"], []))} for r in rows], P2_COLUMNS)


def _p3(d: dict[str, Any]) -> str:
    return table(seed_means(d["rows"]), P3_COLUMNS)


def _p4(d: dict[str, Any]) -> str:
    rows, kinds = pivot(d["rows"], "detector", "anomaly_kind", "auroc")
    alarms: dict[str, Any] = {}
    for r in d["rows"]:  # the false-alarm rate of the 'mean' row, else of the detector's first row
        if r["anomaly_kind"] == "mean" or r["detector"] not in alarms:
            alarms[r["detector"]] = r.get("false_alarm_rate")
    for r in rows:
        r["false_alarm_rate"] = alarms.get(r["detector"])
    cols = [("detector", "detector", ""), *((k, f"{k} AUROC" if k == kinds[0] else k, ".3f") for k in kinds),
            ("false_alarm_rate", "false alarms", "%")]
    return table(rows, cols)


def _short(model: str) -> str:
    """A column header: the model's name without its seed and the note on how its floor was chosen."""
    return re.sub(r" \(chosen before \d{4}\)|, seed \d+$", "", model).replace("Student-t", "t")


def _p1m(d: dict[str, Any]) -> str:
    base = d.get("dm_baseline", "GARCH(1,1) Student-t")
    models = d.get("models") or list(dict.fromkeys(r["model"] for r in d["rows"]))
    grid: dict[str, Row] = {}
    for name in d.get("series") or list(dict.fromkeys(r["series"] for r in d["rows"])):
        grid[name] = {"series": name, **dict.fromkeys(models, "missing")}
    for r in d["rows"]:
        cell = grid.setdefault(r["series"], {"series": r["series"], **dict.fromkeys(models, "missing")})
        if r.get("log_score") is None:
            cell[r["model"]] = "n/a" if r.get("note") else "missing"
        elif r["model"] == base:
            cell[r["model"]] = f"{r['log_score']:.4f}"
        elif r.get("gain_vs_garch_t") is not None:
            cell[r["model"]] = f"{r['gain_vs_garch_t']:+.4f} ({fmt(r.get('dm_t'), '.1f')})"
        else:
            cell[r["model"]] = f"{r['log_score']:.4f}"
    cols = [("series", "series", "")] + [(m, f"{_short(m)}: log score" if m == base else _short(m), "")
                                         for m in models]
    return table(list(grid.values()), cols)


def _with(columns: Columns) -> Callable[[dict[str, Any]], str]:
    return lambda d: table(d["rows"], columns)


def _generic(d: dict[str, Any]) -> str:
    keys: list[str] = []
    for r in d["rows"]:
        keys += [k for k, v in r.items() if k not in keys and not isinstance(v, list | dict)]
    return table(d["rows"], [(k, k.replace("_", " "), "") for k in keys])


def renderer(d: dict[str, Any]) -> Callable[[dict[str, Any]], str]:
    """The table function for a results file's protocol and row keys."""
    first = (d.get("rows") or [{}])[0]
    if {"name", "value", "unit"} <= set(first):
        return _with(SPEED_COLUMNS)
    if "anomaly_kind" in first:
        return _p4
    if "loglik_per_asset_day" in first:
        return _with(P4_LOGLIK_COLUMNS)
    if "global_transformer" in first:
        return _with(PANEL_COLUMNS)
    if "executor" in first and "wall_s" in first:
        return _with(SCALEOUT_COLUMNS)
    if "share_beyond_2x" in first:
        return _with(TAIL_COLUMNS)
    if "cover_90" in first:
        return _with(HORIZON_COLUMNS)
    if "median_crps_vs_garch_t" in first:
        return _with(MANY_HORIZON_COLUMNS)
    return {"P1": _p1, "P1m": _p1m, "P2": _p2, "P3": _p3, "P5": _with(P5_COLUMNS),
            "P6": _with(P6_COLUMNS)}.get(str(d.get("protocol", "")), _generic)


def render(name: str, key: str | None = None) -> str:
    """The Markdown of results file ``name`` (without ``.json``): the table of its ``rows`` (or of
    its list ``key``) and where it came from.

    Raises
    ------
    KeyError
        When ``key`` is given and the file has no list of records under it.
    """
    d = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
    meta = (f"*`{d.get('command', '?')}`, finar {d.get('finar_version', '?')}, {d.get('created', '?')}, "
            f"{d.get('machine', '?')}; from `benchmarks/results/{name}.json`"
            f"{f', key `{key}`' if key else ''}.*")
    if key is not None:
        records = d.get(key)
        if not (isinstance(records, list) and records and all(isinstance(r, dict) for r in records)):
            raise KeyError(f"benchmarks/results/{name}.json has no list of records under {key!r}")
        return f"{_generic({'rows': records})}\n\n{meta}"
    if not d.get("rows"):
        return f"*`benchmarks/results/{name}.json` has no rows.*"
    return f"{renderer(d)(d)}\n\n{meta}"


# ---- mkdocs hooks --------------------------------------------------------------------------------
_USED: set[str] = set()


def on_pre_build(config: Any) -> None:
    _USED.clear()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each ``<!-- results: NAME -->`` line with the table of ``NAME.json``."""

    def sub(m: re.Match[str]) -> str:
        name, key = m.group(1), m.group(2)
        if not (RESULTS / f"{name}.json").is_file():
            log.warning("%s: <!-- results: %s --> names no file benchmarks/results/%s.json",
                        page.file.src_uri, name, name)
            return f"*missing: benchmarks/results/{name}.json*"
        try:
            out = render(name, key)
        except KeyError as exc:
            log.warning("%s: %s", page.file.src_uri, exc.args[0])
            return f"*missing: {key} in benchmarks/results/{name}.json*"
        if key is None:
            _USED.add(name)
        return out

    return MARKER.sub(sub, markdown)


def on_post_build(config: Any) -> None:
    """Every results file must have a place on the site."""
    unused = sorted(p.stem for p in RESULTS.glob("*.json") if p.stem not in _USED)
    if unused:
        log.warning("benchmark results without a table on the site (add <!-- results: NAME --> to "
                    "docs/benchmarks.md): %s", ", ".join(unused))

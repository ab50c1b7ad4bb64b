"""Reports: self-contained HTML pages of finar's results, built over its public objects.

:func:`report` runs the whole pipeline on a price series (data overview, P1 model comparison,
fan charts, PIT and VaR, P3 stylized facts, anomalies, tick realism, the benchmark record) and
returns a :class:`Report`; :func:`scenario_page` is the one-page fan chart of ``finar sample``.

The layers, each importing only those above it:

- :mod:`~finar.reporting.pipeline`: the steps the report and the ``finar`` command share
  (loading data and picking columns, test periods, model specs, backtest, detector and tick
  runs);
- :mod:`~finar.reporting.config`: :class:`ReportConfig`, what a report runs;
- :mod:`~finar.reporting.tables`: the result tables as DataFrames (rendered here as HTML, by
  the CLI as rich tables); :mod:`~finar.reporting.record`: the recorded benchmark figures;
- :mod:`~finar.reporting.context`: the :class:`~finar.reporting.context.Context` the sections share;
- :mod:`~finar.reporting.figures`, :mod:`~finar.reporting.page`,
  :mod:`~finar.reporting.scenarios`: plotly figures and HTML;
- :mod:`~finar.reporting.sections`: one function per section; :mod:`~finar.reporting.builder`:
  :func:`report`.

Names that need plotly (:func:`report`, :class:`Report`, :func:`fan_chart`,
:func:`scenario_page`) are imported on first use.
"""

from finar._lazy import lazy_exports
from finar.reporting.config import ReportConfig
from finar.reporting.pipeline import ConfigError, ModelSpec, SectionUnavailable

#: names imported on first access (plotly underneath): see :mod:`finar._lazy`
_LAZY = {
    "Report": "finar.reporting.builder",
    "report": "finar.reporting.builder",
    "fan_chart": "finar.reporting.scenarios",
    "scenario_page": "finar.reporting.scenarios",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = ["ConfigError", "ModelSpec", "Report", "ReportConfig", "SectionUnavailable", "fan_chart", "report",
           "scenario_page"]

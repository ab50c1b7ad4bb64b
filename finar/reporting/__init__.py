"""Reports: self-contained HTML pages of finar's results, built over its public objects.

:func:`report` runs the whole pipeline on a price series (data overview, P1 model comparison,
fan charts, PIT and VaR, P3 stylized facts, anomalies, tick realism, the benchmark record) and
returns a :class:`Report`; :func:`scenario_page` is the one-page fan chart of ``finar sample``.
Each section is one function of :mod:`finar.reporting.sections`.
"""

from finar.reporting.builder import Report, SectionUnavailable, report
from finar.reporting.config import ConfigError, ModelSpec, ReportConfig
from finar.reporting.scenarios import fan_chart, scenario_page

__all__ = ["ConfigError", "ModelSpec", "Report", "ReportConfig", "SectionUnavailable", "fan_chart", "report",
           "scenario_page"]

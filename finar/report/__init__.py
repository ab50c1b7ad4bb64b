"""Reports: plotly figures and self-contained HTML pages built over finar's public objects.

For now one page, :func:`scenario_page` (scenario fans and tail risk per model); the full
report arrives with ``finar report``.
"""

from finar.report.scenarios import scenario_page

__all__ = ["scenario_page"]

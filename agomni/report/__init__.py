"""Reports (Markdown, self-contained HTML, CSV, JSON) and comparisons of run folders."""

from .compare import Comparison, compare_runs
from .render import write_report

__all__ = ["Comparison", "compare_runs", "write_report"]

from .html import ReportResult as ReportResult
from .html import build_report as build_report
from .stats import Table as Table
from .stats import WorkspaceStats as WorkspaceStats
from .stats import simulation_scores as simulation_scores
from .stats import training_summary as training_summary
from .stats import workspace_stats as workspace_stats

__all__ = [
    "build_report",
    "ReportResult",
    "workspace_stats",
    "WorkspaceStats",
    "training_summary",
    "simulation_scores",
    "Table",
]

from .html import ReportResult as ReportResult, build_report as build_report
from .stats import (
    Table as Table,
    WorkspaceStats as WorkspaceStats,
    simulation_scores as simulation_scores,
    training_summary as training_summary,
    workspace_stats as workspace_stats,
)

__all__ = [
    "build_report",
    "ReportResult",
    "workspace_stats",
    "WorkspaceStats",
    "training_summary",
    "simulation_scores",
    "Table",
]

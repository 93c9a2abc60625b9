from .clean import CleaningAction as CleaningAction
from .members import read_members as read_members, write_members as write_members
from .merge import MergeReport as MergeReport, merge_customers as merge_customers

__all__ = ["CleaningAction", "MergeReport", "merge_customers", "read_members", "write_members"]

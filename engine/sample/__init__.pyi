from .demo import DemoResult as DemoResult, run_demo as run_demo
from .workspace import (
    SampleReport as SampleReport,
    write_sample_workspace as write_sample_workspace,
)

__all__ = ["write_sample_workspace", "SampleReport", "run_demo", "DemoResult"]

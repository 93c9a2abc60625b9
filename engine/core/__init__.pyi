from .batch import (
    ExecutionPlan as ExecutionPlan,
)
from .batch import (
    run_batch as run_batch,
)
from .errors import (
    AcquisitionError as AcquisitionError,
)
from .errors import (
    CancelledError as CancelledError,
)
from .errors import (
    ConfigError as ConfigError,
)
from .errors import (
    EnrolmentError as EnrolmentError,
)
from .errors import (
    InputError as InputError,
)
from .errors import (
    MissingStageError as MissingStageError,
)
from .errors import (
    MmauthError as MmauthError,
)
from .errors import (
    ModelIntegrityError as ModelIntegrityError,
)
from .feature_tables import (
    FeatureRunReport as FeatureRunReport,
)
from .feature_tables import (
    FileFailure as FileFailure,
)
from .feature_tables import (
    feature_matrix as feature_matrix,
)
from .feature_tables import (
    read_feature_table as read_feature_table,
)
from .fileio import (
    atomic_write_bytes as atomic_write_bytes,
)
from .fileio import (
    atomic_write_csv as atomic_write_csv,
)
from .fileio import (
    atomic_write_json as atomic_write_json,
)
from .fileio import (
    atomic_write_text as atomic_write_text,
)
from .fileio import (
    file_sha256 as file_sha256,
)
from .metrics import (
    OperatingPoint as OperatingPoint,
)
from .metrics import (
    Rate as Rate,
)
from .metrics import (
    det_curve as det_curve,
)
from .metrics import (
    equal_error_rate as equal_error_rate,
)
from .metrics import (
    operating_point as operating_point,
)
from .metrics import (
    rate as rate,
)
from .metrics import (
    threshold_at_fmr as threshold_at_fmr,
)
from .metrics import (
    wilson_interval as wilson_interval,
)
from .progress import (
    Progress as Progress,
)
from .progress import (
    ProgressCallback as ProgressCallback,
)
from .progress import (
    check_cancelled as check_cancelled,
)
from .progress import (
    no_progress as no_progress,
)
from .settings import (
    Settings as Settings,
)
from .settings import (
    dump_toml as dump_toml,
)
from .settings import (
    load_settings as load_settings,
)
from .workspace import (
    Workspace as Workspace,
)
from .workspace import (
    member_folders as member_folders,
)
from .workspace import (
    resolve_workspace as resolve_workspace,
)

__all__ = [
    "MmauthError",
    "ConfigError",
    "InputError",
    "AcquisitionError",
    "MissingStageError",
    "ModelIntegrityError",
    "EnrolmentError",
    "CancelledError",
    "Settings",
    "load_settings",
    "dump_toml",
    "Workspace",
    "resolve_workspace",
    "member_folders",
    "Progress",
    "ProgressCallback",
    "no_progress",
    "check_cancelled",
    "Rate",
    "rate",
    "wilson_interval",
    "OperatingPoint",
    "operating_point",
    "threshold_at_fmr",
    "det_curve",
    "equal_error_rate",
    "FeatureRunReport",
    "FileFailure",
    "read_feature_table",
    "feature_matrix",
    "ExecutionPlan",
    "run_batch",
    "atomic_write_text",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_csv",
    "file_sha256",
]

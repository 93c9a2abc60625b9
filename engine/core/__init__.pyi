from .batch import (
    ExecutionPlan as ExecutionPlan,
    run_batch as run_batch,
)
from .errors import (
    AcquisitionError as AcquisitionError,
    CancelledError as CancelledError,
    ConfigError as ConfigError,
    EnrolmentError as EnrolmentError,
    InputError as InputError,
    MissingStageError as MissingStageError,
    MmauthError as MmauthError,
    ModelIntegrityError as ModelIntegrityError,
    MultipleFacesError as MultipleFacesError,
    OutputError as OutputError,
)
from .feature_tables import (
    FeatureRunReport as FeatureRunReport,
    FileFailure as FileFailure,
    feature_matrix as feature_matrix,
    read_feature_table as read_feature_table,
)
from .fileio import (
    atomic_write_bytes as atomic_write_bytes,
    atomic_write_csv as atomic_write_csv,
    atomic_write_files as atomic_write_files,
    atomic_write_json as atomic_write_json,
    atomic_write_text as atomic_write_text,
    file_sha256 as file_sha256,
)
from .metrics import (
    OperatingPoint as OperatingPoint,
    Rate as Rate,
    det_curve as det_curve,
    equal_error_rate as equal_error_rate,
    operating_point as operating_point,
    rate as rate,
    threshold_at_fmr as threshold_at_fmr,
    wilson_interval as wilson_interval,
)
from .progress import (
    Progress as Progress,
    ProgressCallback as ProgressCallback,
    check_cancelled as check_cancelled,
    no_progress as no_progress,
)
from .settings import (
    Settings as Settings,
    dump_toml as dump_toml,
    load_settings as load_settings,
)
from .workspace import (
    Workspace as Workspace,
    member_folders as member_folders,
    resolve_workspace as resolve_workspace,
)

__all__ = [
    "MmauthError",
    "ConfigError",
    "InputError",
    "AcquisitionError",
    "MultipleFacesError",
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

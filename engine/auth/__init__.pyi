from .enrol import (
    EnrolmentResult as EnrolmentResult,
    MemberInfo as MemberInfo,
    RemovalResult as RemovalResult,
    enrol_member as enrol_member,
    list_members as list_members,
    remove_member as remove_member,
)
from .flow import (
    Authenticator as Authenticator,
    authenticate as authenticate,
)
from .outcomes import (
    AuthDecision as AuthDecision,
    StepOutcome as StepOutcome,
)
from .replay import (
    ReplayGuard as ReplayGuard,
    ReplayVerdict as ReplayVerdict,
)
from .simulate import (
    SimulationReport as SimulationReport,
    load_report as load_report,
    run_simulation as run_simulation,
)
from .store import (
    AuditStore as AuditStore,
    open_store as open_store,
)
from .words import (
    Decision as Decision,
    Origin as Origin,
    Reason as Reason,
    Step as Step,
    StepStatus as StepStatus,
    compare_scores as compare_scores,
)

__all__ = [
    "AuditStore",
    "AuthDecision",
    "Authenticator",
    "Decision",
    "EnrolmentResult",
    "MemberInfo",
    "Origin",
    "Reason",
    "RemovalResult",
    "ReplayGuard",
    "ReplayVerdict",
    "SimulationReport",
    "Step",
    "StepOutcome",
    "StepStatus",
    "authenticate",
    "compare_scores",
    "enrol_member",
    "list_members",
    "load_report",
    "open_store",
    "remove_member",
    "run_simulation",
]

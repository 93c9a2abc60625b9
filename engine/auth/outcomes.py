"""What an authentication reports and finds: one StepOutcome per step, then the AuthDecision;
the typed result each step hands to the steps after it (engine.auth.flow runs them).

Also the flow's denial (``Denied``, raised by a step with its reason) and the helpers that time
a step, turn any failure of a step into a denial (fail closed) and complete the list of steps.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.auth.probes import ProbeMedia
from engine.auth.store import AttemptRecord, Lockout
from engine.auth.words import REASONS, STEP_NAMES, Decision, Reason, Step, StepStatus
from engine.core.errors import AcquisitionError, InputError, MmauthError, MultipleFacesError

if TYPE_CHECKING:
    from engine.auth.replay import ReplayVerdict


@dataclasses.dataclass(frozen=True)
class StepOutcome:
    """What one step of the flow found."""

    name: Step
    """One of STEP_NAMES."""
    status: StepStatus
    """``passed``, ``failed`` or ``skipped``."""
    score: float | None = None
    """The step's score, when it has one (face similarity, voice score, replay closeness)."""
    threshold: float | None = None
    """What the score was compared with."""
    seconds: float = 0.0
    """Time the step took."""
    message: str = ""
    """What happened, in words."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class AuthDecision:
    """The outcome of one authentication attempt."""

    granted: bool
    reason: Reason
    """``ok`` when granted, else a key of REASONS."""
    member: str | None
    """The member the face identified (on a denial too, once the face step named one)."""
    category: str | None
    """The recommended product category; only on GRANTED (held back otherwise)."""
    steps: tuple[StepOutcome, ...]
    """Every step in STEP_NAMES order, including those not reached (``skipped``)."""
    seconds: float
    """Wall time of the whole attempt, audit write included."""
    message: str
    """One sentence for the person at the terminal."""
    confidence: float | None = None
    """The product model's probability for ``category``."""
    attempt_id: int | None = None
    """Row of the attempt in the audit store (None when not recorded)."""
    lockout: Lockout | None = None
    """Set when this attempt locked the member."""

    @property
    def decision(self) -> Decision:
        return Decision.GRANTED if self.granted else Decision.DENIED

    def step(self, name: str) -> StepOutcome:
        return next(s for s in self.steps if s.name == name)

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["decision"] = self.decision
        return values


class Denied(Exception):
    """Stops the flow at a step with a reason code; ``evidence`` is what the step had found
    before it denied (a face score, a file's hash), kept for the audit row."""

    def __init__(
        self, reason: Reason, message: str, outcome: StepOutcome, evidence: Any = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.outcome = outcome
        self.evidence = evidence

    @classmethod
    def at(
        cls,
        step: Step,
        reason: Reason,
        message: str,
        started: float,
        score: float | None = None,
        threshold: float | None = None,
        *,
        evidence: Any = None,
        detail: str | None = None,
    ) -> Denied:
        """The denial at ``step``, with its failed outcome timed from ``started``; ``detail`` is
        the step's own message where it says less than the decision's."""
        outcome = step_outcome(
            step,
            StepStatus.FAILED,
            started,
            message if detail is None else detail,
            score,
            threshold,
        )
        return cls(reason, message, outcome, evidence)


def step_outcome(
    name: Step,
    status: StepStatus,
    started: float,
    message: str,
    score: float | None = None,
    threshold: float | None = None,
) -> StepOutcome:
    """A step's outcome, timed from ``started`` (a perf_counter reading)."""
    return StepOutcome(
        name=name,
        status=status,
        score=None if score is None else float(score),
        threshold=None if threshold is None else float(threshold),
        seconds=time.perf_counter() - started,
        message=message,
    )


def all_steps(done: list[StepOutcome], granted: bool, message: str) -> tuple[StepOutcome, ...]:
    """Every step in STEP_NAMES order: those run, ``skipped`` for the rest, then the decision."""
    ran = {step.name: step for step in done}
    ran[Step.DECISION] = StepOutcome(
        Step.DECISION, StepStatus.PASSED if granted else StepStatus.FAILED, message=message
    )
    return tuple(
        ran.get(name, StepOutcome(name, StepStatus.SKIPPED, message="not reached"))
        for name in STEP_NAMES
    )


# What each step found, handed explicitly to the steps after it --------------------------------


@dataclasses.dataclass(frozen=True)
class InputStepResult:
    """The presented files and their SHA-256 (a hash is None when the file could not be read)."""

    face_path: Path | None
    voice_path: Path | None
    face_sha256: str | None = None
    voice_sha256: str | None = None


@dataclasses.dataclass(frozen=True)
class FaceStepResult:
    """The face model's answer for the photo."""

    member: str | None
    """The member the attempt is for (the identified one); None when the photo was rejected."""
    match: Any
    """The FaceMatch (score, threshold, closest member)."""


@dataclasses.dataclass(frozen=True)
class ReplayStepResult:
    """The replay guard's verdict; None when there was no speech to fingerprint."""

    verdict: ReplayVerdict | None


@dataclasses.dataclass(frozen=True)
class ProductStepResult:
    """The recommendation held back until the voice is verified (None when there is none)."""

    category: str | None = None
    confidence: float | None = None


@dataclasses.dataclass(frozen=True)
class VoiceStepResult:
    """The voice step's score against its threshold."""

    score: float
    threshold: float


@dataclasses.dataclass(frozen=True)
class Evidence:
    """The step results an attempt reached, for the decision and its audit row."""

    files: InputStepResult
    face: FaceStepResult | None = None
    product: ProductStepResult | None = None
    voice: VoiceStepResult | None = None

    def including(self, result: Any) -> Evidence:
        field = {
            InputStepResult: "files",
            FaceStepResult: "face",
            ProductStepResult: "product",
            VoiceStepResult: "voice",
        }.get(type(result))
        return self if field is None else dataclasses.replace(self, **{field: result})

    @property
    def member(self) -> str | None:
        return self.face.member if self.face is not None else None


def acquire(
    step: Step,
    extract: Callable[[ProbeMedia], Any],
    media: ProbeMedia,
    fta_reason: Reason,
    started: float,
) -> Any:
    """Features of one input, or the denial: failure to acquire (no face, no speech), several
    faces, or an unusable file."""
    try:
        return extract(media)
    except AcquisitionError as error:
        reason = Reason.MULTIPLE_FACES if isinstance(error, MultipleFacesError) else fta_reason
        message = f"{REASONS[reason]}: {error.message}"
        raise Denied.at(step, reason, message, started, detail=error.message) from None
    except InputError as error:
        what = "photo" if step == Step.FACE else "recording"
        message = f"the {what} cannot be used: {error.message}"
        raise Denied.at(step, Reason.BAD_INPUT, message, started, detail=error.message) from None


def guarded(step: Step, run: Callable[..., Any], *inputs: Any) -> Any:
    """Run a step; anything it did not turn into a denial itself becomes one (fail closed)."""
    from engine.auth.database import StoreError

    started = time.perf_counter()
    try:
        return run(*inputs)
    except Denied:
        raise
    except StoreError as error:
        message = f"{REASONS[Reason.AUDIT_FAILED]}: {error.message}"
        raise Denied.at(step, Reason.AUDIT_FAILED, message, started) from None
    except MmauthError as error:
        message = f"{REASONS[Reason.INTERNAL_ERROR]}: {error.message}"
        raise Denied.at(step, Reason.INTERNAL_ERROR, message, started) from None
    # A security check must fail closed: an unforeseen error denies access, with its cause.
    except Exception as error:  # noqa: BLE001
        message = f"{REASONS[Reason.INTERNAL_ERROR]}: unexpected {type(error).__name__}: {error}"
        raise Denied.at(step, Reason.INTERNAL_ERROR, message, started) from None


def attempt_record(
    evidence: Evidence,
    started_at: float,
    granted: bool,
    reason: Reason,
    message: str,
    steps: tuple[StepOutcome, ...],
    wall: float,
    origin: str,
) -> AttemptRecord:
    """The audit store's row for a finished attempt (the product only when granted)."""
    files, face, voice = evidence.files, evidence.face, evidence.voice
    product = evidence.product if granted else None
    return AttemptRecord(
        at=started_at,
        decision=Decision.GRANTED if granted else Decision.DENIED,
        reason=reason,
        message=message,
        seconds=time.perf_counter() - wall,
        steps=tuple(s.as_dict() for s in steps),
        face_path=str(files.face_path) if files.face_path else None,
        voice_path=str(files.voice_path) if files.voice_path else None,
        face_sha256=files.face_sha256,
        voice_sha256=files.voice_sha256,
        claimed_member=evidence.member,
        identified_member=evidence.member,
        category=product.category if product is not None else None,
        face_score=float(face.match.score) if face is not None else None,
        face_threshold=float(face.match.threshold) if face is not None else None,
        voice_score=voice.score if voice is not None else None,
        voice_threshold=voice.threshold if voice is not None else None,
        origin=origin,
    )

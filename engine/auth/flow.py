"""The authentication flow: a face and a voice in, one GRANTED or DENIED decision out, logged.

Steps, in order (each reported with its status, score, threshold and time, so a front end can
light them up one by one):

1. ``input``    both files exist, are regular, non-empty files; their SHA-256 is taken.
2. ``models``   the trained models load, each verified against the manifest.
3. ``face``     the face model names an enrolled member, or rejects the photo as unknown.
4. ``lockout``  that member is not locked after repeated denials (per member, so it can only be
                checked once the face has named one).
5. ``replay``   neither file is (nearly) one of that member's enrolment files.
6. ``product``  the product model's recommendation for the member, held back until the end.
7. ``voice``    the voice belongs to the same member and says one of their enrolled phrases.
8. ``decision`` GRANTED with the recommendation, or DENIED with a reason code.

Bad input never raises: every failure is a DENIED decision with a reason code and a message a
person understands. The flow fails closed: an unexpected error, or an attempt that cannot be
written to the audit log, is DENIED.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engine.auth.store import (
    DENIED,
    GRANTED,
    LIVE,
    AttemptRecord,
    AuditStore,
    Lockout,
    LockoutPolicy,
    open_store,
)
from engine.core.errors import (
    AcquisitionError,
    InputError,
    MmauthError,
    ModelIntegrityError,
)
from engine.core.fileio import file_sha256
from engine.core.settings import Settings
from engine.core.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np

    from engine.auth.replay import ReplayGuard
    from engine.models.persistence import ModelBundle

STEP_NAMES = ("input", "models", "face", "lockout", "replay", "product", "voice", "decision")
PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"
"""Status of a step that was not reached, or (product) could not run without denying."""

OK = "ok"
REASONS: dict[str, str] = {
    OK: "face and voice verified",
    "bad_input": "a file could not be used",
    "models_missing": "the models are not trained yet",
    "models_refused": "a model file failed its integrity check",
    "no_face": "no face was found in the photo",
    "unknown_face": "the face does not match any enrolled member",
    "locked_out": "this member is locked after repeated failed attempts",
    "replay_suspected": "a copy of an enrolment sample was presented",
    "no_speech": "no usable speech was found in the recording",
    "voice_mismatch": "the voice does not match the member the face identified",
    "phrase_mismatch": "the phrase is not one of the member's approval phrases",
    "audit_failed": "the attempt could not be written to the audit log",
    "internal_error": "an unexpected error stopped the check",
}
"""Every reason code a decision can carry, with its short meaning."""


@dataclasses.dataclass(frozen=True)
class StepOutcome:
    """What one step of the flow found."""

    name: str
    """One of STEP_NAMES."""
    status: str
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
    reason: str
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
    def decision(self) -> str:
        return GRANTED if self.granted else DENIED

    def step(self, name: str) -> StepOutcome:
        return next(s for s in self.steps if s.name == name)

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["decision"] = self.decision
        return values


class FeatureSource(Protocol):
    """Where probe features come from: the pipelines (default) or a cache (simulation)."""

    def face(self, path: Path) -> np.ndarray: ...

    def voice(self, path: Path) -> Any: ...


@dataclasses.dataclass(frozen=True)
class PipelineFeatures:
    """Features computed by the face and voice pipelines, the same code as the batch."""

    settings: Settings

    def face(self, path: Path) -> np.ndarray:
        from engine.faces.extract import face_vector

        return face_vector(path, self.settings)

    def voice(self, path: Path) -> Any:
        from engine.voices.extract import voice_sample

        return voice_sample(path, self.settings)


class _Denied(Exception):
    """Internal: stops the flow at a step with a reason code."""

    def __init__(self, reason: str, message: str, outcome: StepOutcome) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.outcome = outcome


@dataclasses.dataclass
class _Attempt:
    face_path: Path | None
    voice_path: Path | None
    started: float
    face_sha256: str | None = None
    voice_sha256: str | None = None
    member: str | None = None
    category: str | None = None
    confidence: float | None = None
    face_score: float | None = None
    face_threshold: float | None = None
    voice_score: float | None = None
    voice_threshold: float | None = None
    face_match: Any = None


class Authenticator:
    """The flow with its models, store and replay index loaded once (warm), for many attempts.

    ``record=False`` writes nothing to the audit store; ``lockout=False`` neither checks nor
    counts towards lockouts (the simulation uses both, so that its attempts cannot lock a real
    member). ``origin`` tags recorded attempts (``live`` or ``simulation``).
    """

    def __init__(
        self,
        workspace: Workspace,
        settings: Settings,
        *,
        bundle: ModelBundle | None = None,
        store: AuditStore | None = None,
        clock: Callable[[], float] = time.time,
        features: FeatureSource | None = None,
        replay_guard: ReplayGuard | None = None,
        record: bool = True,
        lockout: bool = True,
        origin: str = LIVE,
    ) -> None:
        self.workspace = workspace
        self.settings = settings
        self.bundle = bundle
        self.store = store
        self.clock = clock
        self.features = features or PipelineFeatures(settings)
        self.replay_guard = replay_guard
        self.record = record
        self.lockout = lockout
        self.origin = origin
        self._fusion: Any = None
        self._recommendations: dict[tuple[Any, ...], Any] = {}
        self.policy = LockoutPolicy(
            attempts=settings.auth.lockout_attempts,
            window_s=settings.auth.lockout_window_s,
            duration_s=settings.auth.lockout_duration_s,
        )

    # The flow ---------------------------------------------------------------------------------

    def authenticate(
        self,
        face_path: str | Path | None,
        voice_path: str | Path | None,
        on_step: Callable[[StepOutcome], None] | None = None,
    ) -> AuthDecision:
        """Run every step and return the decision; ``on_step`` sees each step as it finishes."""
        for event in self.run(face_path, voice_path):
            if isinstance(event, AuthDecision):
                return event
            if on_step is not None:
                on_step(event)
        raise AssertionError("the flow always ends with a decision")

    def run(
        self, face_path: str | Path | None, voice_path: str | Path | None
    ) -> Iterator[StepOutcome | AuthDecision]:
        """The flow as a generator: each StepOutcome as it finishes, then the AuthDecision."""
        attempt = _Attempt(
            face_path=Path(face_path) if face_path else None,
            voice_path=Path(voice_path) if voice_path else None,
            started=self.clock(),
        )
        wall = time.perf_counter()
        done: list[StepOutcome] = []
        reason, message = OK, REASONS[OK]
        steps = (
            self._input,
            self._models,
            self._face,
            self._lockout,
            self._replay,
            self._product,
            self._voice,
        )
        try:
            for step in steps:
                outcome = _guarded(step, attempt)
                done.append(outcome)
                yield outcome
        except _Denied as denial:
            reason, message = denial.reason, denial.message
            done.append(denial.outcome)
            yield denial.outcome
        if reason == OK:
            message = f"access granted to {attempt.member}"
            if attempt.category is not None:
                message += f"; recommended category: {attempt.category}"
        decision = self._finish(attempt, reason, message, done, wall)
        yield decision.step("decision")
        yield decision

    def _finish(
        self,
        attempt: _Attempt,
        reason: str,
        message: str,
        done: list[StepOutcome],
        wall: float,
    ) -> AuthDecision:
        attempt_id: int | None = None
        lock: Lockout | None = None
        granted = reason == OK
        steps = _all_steps(done, granted, message)
        if self.record:
            try:
                attempt_id, lock = self._store().record_attempt(
                    self._audit_row(attempt, granted, reason, message, steps, wall),
                    self.policy if self.lockout else None,
                )
            except MmauthError as error:
                # Fail closed: access that leaves no trace in the audit log is not granted.
                granted, reason = False, "audit_failed"
                message = f"{REASONS[reason]}: {error.message}"
                steps = _all_steps(done, granted, message)
        if lock is not None:
            message += (
                f"; after {lock.failures} failed attempts {lock.member} is locked for "
                f"{_duration(lock.until - lock.locked_at)}"
            )
        return AuthDecision(
            granted=granted,
            reason=reason,
            member=attempt.member,
            category=attempt.category if granted else None,
            confidence=attempt.confidence if granted else None,
            steps=steps,
            seconds=time.perf_counter() - wall,
            message=message,
            attempt_id=attempt_id,
            lockout=lock,
        )

    def _audit_row(
        self,
        attempt: _Attempt,
        granted: bool,
        reason: str,
        message: str,
        steps: tuple[StepOutcome, ...],
        wall: float,
    ) -> AttemptRecord:
        return AttemptRecord(
            at=attempt.started,
            decision=GRANTED if granted else DENIED,
            reason=reason,
            message=message,
            seconds=time.perf_counter() - wall,
            steps=tuple(s.as_dict() for s in steps),
            face_path=str(attempt.face_path) if attempt.face_path else None,
            voice_path=str(attempt.voice_path) if attempt.voice_path else None,
            face_sha256=attempt.face_sha256,
            voice_sha256=attempt.voice_sha256,
            claimed_member=attempt.member,
            identified_member=attempt.member,
            category=attempt.category if granted else None,
            face_score=attempt.face_score,
            face_threshold=attempt.face_threshold,
            voice_score=attempt.voice_score,
            voice_threshold=attempt.voice_threshold,
            origin=self.origin,
        )

    # Steps ------------------------------------------------------------------------------------

    def _input(self, attempt: _Attempt) -> StepOutcome:
        started = time.perf_counter()
        problems = []
        for label, path in (("photo", attempt.face_path), ("recording", attempt.voice_path)):
            problem = _file_problem(path)
            if problem is None:
                try:
                    digest = file_sha256(path)
                except OSError as error:
                    problem = f"cannot read it ({error.strerror})"
                else:
                    if label == "photo":
                        attempt.face_sha256 = digest
                    else:
                        attempt.voice_sha256 = digest
            if problem is not None:
                shown = path.name if path is not None else "(none given)"
                problems.append(f"the {label} {shown}: {problem}")
        if problems:
            message = "; ".join(problems)
            raise _Denied("bad_input", message, _step("input", FAILED, started, message))
        return _step("input", PASSED, started, "both files are readable")

    def _models(self, attempt: _Attempt) -> StepOutcome:
        started = time.perf_counter()
        try:
            bundle = self._bundle()
        except ModelIntegrityError as error:
            message = f"{REASONS['models_refused']}: {error.message}"
            raise _Denied(
                "models_refused", message, _step("models", FAILED, started, message)
            ) from None
        except MmauthError as error:
            message = f"{REASONS['models_missing']}: {error.message}"
            raise _Denied(
                "models_missing", message, _step("models", FAILED, started, message)
            ) from None
        missing = [name for name in ("face", "voice") if getattr(bundle, name, None) is None]
        if missing:
            message = (
                f"{REASONS['models_missing']}: no {' and no '.join(missing)} model; "
                "run mmauth train"
            )
            raise _Denied("models_missing", message, _step("models", FAILED, started, message))
        loaded = "face, voice and product models" if bundle.product else "face and voice models"
        return _step("models", PASSED, started, f"{loaded} loaded and verified")

    def _face(self, attempt: _Attempt) -> StepOutcome:
        started = time.perf_counter()
        vector = _acquire("face", self.features.face, attempt.face_path, "no_face", started)
        match = self.bundle.face.identify(vector)
        attempt.face_match = match
        attempt.face_score, attempt.face_threshold = float(match.score), float(match.threshold)
        if match.member is None and self.settings.models.fusion == "score":
            # Score-level fusion: a weak face can be carried by a strong voice, so the closest
            # member becomes the claim and the fused score decides after the voice step.
            attempt.member = match.best_member
            return _step(
                "face",
                PASSED,
                started,
                f"closest to {match.best_member}, under the face threshold: the fused "
                "face + voice score decides",
                match.score,
                match.threshold,
            )
        if match.member is None:
            message = (
                f"{REASONS['unknown_face']} (best similarity "
                f"{compare_scores(match.score, match.threshold)})"
            )
            raise _Denied(
                "unknown_face",
                message,
                _step("face", FAILED, started, message, match.score, match.threshold),
            )
        attempt.member = match.member
        return _step(
            "face",
            PASSED,
            started,
            f"identified as {match.member}",
            match.score,
            match.threshold,
        )

    def _lockout(self, attempt: _Attempt) -> StepOutcome:
        started = time.perf_counter()
        if not self.lockout:
            return _step("lockout", SKIPPED, started, "lockout not applied (simulation)")
        lock = self._store().active_lockout(attempt.member, attempt.started)
        if lock is not None:
            message = (
                f"{attempt.member} is locked after {lock.failures} failed attempts; try again in "
                f"{_duration(lock.until - attempt.started)}"
            )
            raise _Denied("locked_out", message, _step("lockout", FAILED, started, message))
        return _step("lockout", PASSED, started, f"{attempt.member} is not locked")

    def _replay(self, attempt: _Attempt) -> StepOutcome:
        started = time.perf_counter()
        try:
            verdict = self._replay_guard().check(
                attempt.member,
                face_path=attempt.face_path,
                face_sha256=attempt.face_sha256,
                voice_path=attempt.voice_path,
                voice_sha256=attempt.voice_sha256,
            )
        except AcquisitionError:
            # No fingerprint without speech; the voice step will say so with its own reason.
            return _step("replay", PASSED, started, "no speech to compare with enrolment")
        except InputError as error:
            message = f"a file cannot be used: {error.message}"
            raise _Denied("bad_input", message, _step("replay", FAILED, started, message)) from None
        if verdict.suspected:
            message = f"{REASONS['replay_suspected']}: {verdict.message}"
            raise _Denied(
                "replay_suspected",
                message,
                _step("replay", FAILED, started, message, verdict.voice_similarity),
            )
        details = []
        if verdict.face_distance is not None:
            details.append(
                f"photo {verdict.face_distance} bits from the nearest enrolment photo "
                f"(replay at <= {self.settings.auth.replay_image_distance})"
            )
        if verdict.voice_similarity is not None:
            details.append(
                f"recording similarity {verdict.voice_similarity:.3f} "
                f"(replay at >= {self.settings.auth.replay_audio_similarity})"
            )
        return _step(
            "replay",
            PASSED,
            started,
            "; ".join(details) or "no enrolment files to compare with",
            verdict.voice_similarity,
            self.settings.auth.replay_audio_similarity
            if verdict.voice_similarity is not None
            else None,
        )

    def _product(self, attempt: _Attempt) -> StepOutcome:
        from engine.models.recommend import recommend_for_member

        started = time.perf_counter()
        try:
            recommendation = self._recommendation(attempt.member, recommend_for_member)
        except MmauthError as error:
            # A member without a customer link can still authenticate; there is just nothing
            # to recommend.
            return _step("product", SKIPPED, started, f"no recommendation: {error.message}")
        attempt.category = recommendation.category
        attempt.confidence = float(recommendation.confidence)
        return _step(
            "product",
            PASSED,
            started,
            "recommendation ready, held back until the voice is verified",
        )

    def _voice(self, attempt: _Attempt) -> StepOutcome:
        started = time.perf_counter()
        sample = _acquire("voice", self.features.voice, attempt.voice_path, "no_speech", started)
        match = self.bundle.voice.verify(sample.vector, sample.mfcc_sequence, attempt.member)
        attempt.voice_score, attempt.voice_threshold = float(match.score), float(match.threshold)
        scores = (
            f"score {compare_scores(match.score, match.threshold)}; speaker "
            f"{match.speaker_score:.3f}, phrase {match.phrase_score:.3f}"
        )
        if self.settings.models.fusion == "score":
            return self._fused(attempt, match, scores, started)
        if match.accepted:
            said = f" saying {match.phrase!r}" if match.phrase else ""
            return _step(
                "voice",
                PASSED,
                started,
                f"{attempt.member}'s voice{said} ({scores})",
                match.score,
                match.threshold,
            )
        # The phrase is blamed only when the rest of the evidence would have passed.
        if not match.phrase_ok and match.score >= match.threshold:
            reason = "phrase_mismatch"
        else:
            reason = "voice_mismatch"
        message = f"{REASONS[reason]} ({scores})"
        raise _Denied(
            reason, message, _step("voice", FAILED, started, message, match.score, match.threshold)
        )

    def _fused(self, attempt: _Attempt, match: Any, scores: str, started: float) -> StepOutcome:
        """The voice step under score-level fusion: the phrase check stays mandatory, and the
        sum of the z-normalised face and voice scores must reach the fused threshold."""
        if self._fusion is None:
            from engine.models.fusion import ScoreFusion

            self._fusion = ScoreFusion.from_models(
                self.bundle.face, self.bundle.voice, rule="score", random_state=self.settings.seed
            )
        fused = self._fusion.decide(attempt.face_match, match)
        message = f"fused score {compare_scores(fused.fused_score, fused.threshold)} ({scores})"
        if fused.accepted:
            return _step("voice", PASSED, started, message, fused.fused_score, fused.threshold)
        if not match.phrase_ok:
            reason = "phrase_mismatch"
        elif not fused.face_ok:
            reason = "unknown_face"
        else:
            reason = "voice_mismatch"
        message = f"{REASONS[reason]}: {message}"
        raise _Denied(
            reason,
            message,
            _step("voice", FAILED, started, message, fused.fused_score, fused.threshold),
        )

    def _recommendation(self, member: str, recommend: Callable[..., Any]) -> Any:
        """The product model's answer for a member, kept while the model, members.csv and the
        merged dataset are unchanged (reading both tables costs more than the prediction)."""
        key = (
            member,
            id(self.bundle.product),
            *(_signature(p) for p in (self.workspace.members_file, self.workspace.merged_dataset)),
        )
        if key not in self._recommendations:
            self._recommendations = {
                k: v for k, v in self._recommendations.items() if k[1:] == key[1:]
            }
            self._recommendations[key] = recommend(self.workspace, self.bundle, member)
        return self._recommendations[key]

    # Lazily loaded parts ----------------------------------------------------------------------

    def _bundle(self) -> ModelBundle:
        if self.bundle is None:
            from engine.models.persistence import load_model_bundle

            self.bundle = load_model_bundle(self.workspace, require=("face", "voice"))
        return self.bundle

    def _store(self) -> AuditStore:
        if self.store is None:
            self.store = open_store(self.workspace)
        return self.store

    def _replay_guard(self) -> ReplayGuard:
        if self.replay_guard is None:
            from engine.auth.replay import ReplayGuard

            self.replay_guard = ReplayGuard(self.workspace, self.settings, self._store()).sync()
        return self.replay_guard


def authenticate(
    workspace: Workspace,
    settings: Settings,
    face_path: str | Path | None,
    voice_path: str | Path | None,
    *,
    bundle: ModelBundle | None = None,
    store: AuditStore | None = None,
    clock: Callable[[], float] = time.time,
    on_step: Callable[[StepOutcome], None] | None = None,
) -> AuthDecision:
    """One authentication attempt: never raises for bad input (see the module docstring)."""
    authenticator = Authenticator(workspace, settings, bundle=bundle, store=store, clock=clock)
    return authenticator.authenticate(face_path, voice_path, on_step=on_step)


def _acquire(
    step: str, extract: Callable[[Path], Any], path: Path, fta_reason: str, started: float
) -> Any:
    """Features of one input, or the denial: failure to acquire (no face, no speech) or an
    unusable file."""
    try:
        return extract(path)
    except AcquisitionError as error:
        message = f"{REASONS[fta_reason]}: {error.message}"
        raise _Denied(fta_reason, message, _step(step, FAILED, started, error.message)) from None
    except InputError as error:
        what = "photo" if step == "face" else "recording"
        message = f"the {what} cannot be used: {error.message}"
        raise _Denied("bad_input", message, _step(step, FAILED, started, error.message)) from None


def _guarded(step: Callable[[_Attempt], StepOutcome], attempt: _Attempt) -> StepOutcome:
    """Run a step; anything it did not turn into a denial itself becomes one (fail closed)."""
    from engine.auth.store import StoreError

    started = time.perf_counter()
    name = step.__name__.lstrip("_")
    try:
        return step(attempt)
    except _Denied:
        raise
    except StoreError as error:
        message = f"{REASONS['audit_failed']}: {error.message}"
        raise _Denied("audit_failed", message, _step(name, FAILED, started, message)) from None
    except MmauthError as error:
        message = f"{REASONS['internal_error']}: {error.message}"
        raise _Denied("internal_error", message, _step(name, FAILED, started, message)) from None
    # A security check must fail closed: an unforeseen error denies access, with its cause.
    except Exception as error:  # noqa: BLE001
        message = f"{REASONS['internal_error']}: unexpected {type(error).__name__}: {error}"
        raise _Denied("internal_error", message, _step(name, FAILED, started, message)) from None


def _all_steps(done: list[StepOutcome], granted: bool, message: str) -> tuple[StepOutcome, ...]:
    """Every step in STEP_NAMES order: those run, ``skipped`` for the rest, then the decision."""
    ran = {step.name: step for step in done}
    ran["decision"] = StepOutcome("decision", PASSED if granted else FAILED, message=message)
    return tuple(
        ran.get(name, StepOutcome(name, SKIPPED, message="not reached")) for name in STEP_NAMES
    )


def compare_scores(score: float, threshold: float) -> str:
    """``score >= threshold`` or ``score < threshold`` with enough decimals to tell them apart
    (a similarity of 0.99991 against 0.99999 must not read "1.000 < 1.000")."""
    relation = ">=" if score >= threshold else "<"
    decimals = 3
    while decimals < 8 and f"{score:.{decimals}f}" == f"{threshold:.{decimals}f}":
        decimals += 1
    return f"{score:.{decimals}f} {relation} {threshold:.{decimals}f}"


def _signature(path: Path) -> tuple[int, int] | None:
    """(size, modification time) of a file, None when absent: changes when it is rewritten."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _file_problem(path: Path | None) -> str | None:
    if path is None:
        return "no file given"
    try:
        if not path.exists():
            return "no such file"
        if path.is_dir():
            return "is a folder, not a file"
        if not path.is_file():
            return "is not a regular file"
        if path.stat().st_size == 0:
            return "the file is empty (0 bytes)"
    except OSError as error:
        return f"cannot be inspected ({error.strerror})"
    return None


def _step(
    name: str,
    status: str,
    started: float,
    message: str,
    score: float | None = None,
    threshold: float | None = None,
) -> StepOutcome:
    return StepOutcome(
        name=name,
        status=status,
        score=None if score is None else float(score),
        threshold=None if threshold is None else float(threshold),
        seconds=time.perf_counter() - started,
        message=message,
    )


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"

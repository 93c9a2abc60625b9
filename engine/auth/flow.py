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
import math
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engine.auth.audit_log import AuditTamperedError
from engine.auth.outcomes import (
    AuthDecision,
    Denied,
    Evidence,
    FaceStepResult,
    InputStepResult,
    ReplayStepResult,
    StepOutcome,
    VoiceStepResult,
    acquire,
    all_steps,
    attempt_record,
    guarded,
    step_outcome,
)
from engine.auth.probes import ProbeMedia, file_problem
from engine.auth.product_step import ProductRecommendations
from engine.auth.store import (
    AuditStore,
    Lockout,
    LockoutPolicy,
    open_store,
)
from engine.auth.words import (
    REASONS,
    Origin,
    Reason,
    Step,
    StepStatus,
    compare_scores,
)
from engine.core.defences import WeakenedDefencesError, check_defences
from engine.core.errors import InputError, MmauthError, ModelIntegrityError
from engine.core.fileio import file_sha256
from engine.core.settings import AuthSettings, Settings
from engine.core.workspace import Workspace
from engine.models.names import ModelName
from engine.models.signing import UntrustedModelsError

if TYPE_CHECKING:
    import numpy as np

    from engine.auth.replay import ReplayGuard, ReplayVerdict
    from engine.models.loading import ModelBundle

BIOMETRIC_MODELS = (ModelName.FACE, ModelName.VOICE)
"""The models an attempt cannot do without (the product model is optional)."""


class FeatureSource(Protocol):
    """Where probe features come from when not from the pipelines: a cache (simulation)."""

    def face(self, path: Path) -> np.ndarray: ...

    def voice(self, path: Path) -> Any: ...


class Authenticator:
    """The flow with its models, store and replay index loaded once (warm), for many attempts.

    ``record=False`` writes nothing to the audit store; ``lockout=False`` neither checks nor
    counts towards lockouts (the simulation uses both, so that its attempts cannot lock a real
    member). ``origin`` tags recorded attempts (``live`` or ``simulation``). Without
    ``features`` the probes go through the face and voice pipelines, each file decoded once.
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
        origin: str = Origin.LIVE,
    ) -> None:
        self.workspace = workspace
        self.settings = settings
        self.bundle = bundle
        self.store = store
        self.clock = clock
        self.features = features
        self.replay_guard = replay_guard
        self.record = record
        self.lockout = lockout
        self.origin = origin
        self._defences_checked = False
        self.recommendations = ProductRecommendations(workspace, self._bundle)
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
        started_at = self.clock()
        wall = time.perf_counter()
        evidence = Evidence(
            InputStepResult(
                face_path=Path(face_path) if face_path else None,
                voice_path=Path(voice_path) if voice_path else None,
            )
        )
        done: list[StepOutcome] = []
        reason, message = Reason.OK, REASONS[Reason.OK]
        try:
            outcome, files = guarded(Step.INPUT, self._input, evidence.files)
            evidence = evidence.including(files)
            done.append(outcome)
            yield outcome
            media = ProbeMedia(files.face_path, files.voice_path, self.settings)
            outcome, _ = guarded(Step.MODELS, self._models)
            done.append(outcome)
            yield outcome
            outcome, face = guarded(Step.FACE, self._face, media)
            evidence = evidence.including(face)
            done.append(outcome)
            yield outcome
            outcome, _ = guarded(Step.LOCKOUT, self._lockout, face.member, started_at)
            done.append(outcome)
            yield outcome
            outcome, _ = guarded(Step.REPLAY, self._replay, files, face.member, media)
            done.append(outcome)
            yield outcome
            outcome, product = guarded(Step.PRODUCT, self.recommendations.step, face.member)
            evidence = evidence.including(product)
            done.append(outcome)
            yield outcome
            outcome, voice = guarded(Step.VOICE, self._voice, face, media)
            evidence = evidence.including(voice)
            done.append(outcome)
            yield outcome
        except Denied as denial:
            reason, message = denial.reason, denial.message
            evidence = evidence.including(denial.evidence)
            done.append(denial.outcome)
            yield denial.outcome
        if reason == Reason.OK:
            message = f"access granted to {evidence.member}"
            if evidence.product is not None and evidence.product.category is not None:
                message += f"; recommended category: {evidence.product.category}"
        decision = self._finish(evidence, started_at, reason, message, done, wall)
        yield decision.step(Step.DECISION)
        yield decision

    def _finish(
        self,
        evidence: Evidence,
        started_at: float,
        reason: Reason,
        message: str,
        done: list[StepOutcome],
        wall: float,
    ) -> AuthDecision:
        attempt_id: int | None = None
        lock: Lockout | None = None
        granted = reason == Reason.OK
        steps = all_steps(done, granted, message)
        if self.record:
            try:
                attempt_id, lock = self._store().record_attempt(
                    attempt_record(
                        evidence, started_at, granted, reason, message, steps, wall, self.origin
                    ),
                    self.policy if self.lockout else None,
                )
            except AuditTamperedError as error:
                # The log changed under this attempt: the grant is refused and the denial
                # written (denials are always written).
                reason, message = (
                    Reason.AUDIT_TAMPERED,
                    f"{REASONS[Reason.AUDIT_TAMPERED]}: {error.message}",
                )
                return self._finish(evidence, started_at, reason, message, done, wall)
            except MmauthError as error:
                # Fail closed: access that leaves no trace in the audit log is not granted.
                granted, reason = False, Reason.AUDIT_FAILED
                message = f"{REASONS[reason]}: {error.message}"
                steps = all_steps(done, granted, message)
        if lock is not None:
            message += (
                f"; after {lock.failures} failed attempts {lock.member} is locked for "
                f"{_duration(lock.until - lock.locked_at)}"
            )
        product = evidence.product if granted else None
        return AuthDecision(
            granted=granted,
            reason=reason,
            member=evidence.member,
            category=product.category if product is not None else None,
            confidence=product.confidence if product is not None else None,
            steps=steps,
            seconds=time.perf_counter() - wall,
            message=message,
            attempt_id=attempt_id,
            lockout=lock,
        )

    # Steps ------------------------------------------------------------------------------------

    def _input(self, files: InputStepResult) -> tuple[StepOutcome, InputStepResult]:
        started = time.perf_counter()
        problems = []
        digests: dict[str, str] = {}
        for label, path in (("photo", files.face_path), ("recording", files.voice_path)):
            problem = file_problem(path)
            if problem is None and path is not None:
                try:
                    digests[label] = file_sha256(path)
                except OSError as error:
                    problem = f"cannot read it ({error.strerror})"
            if problem is not None:
                # A file that is not there is named by the path looked at: its name alone
                # hides a path taken from another folder than the one meant.
                shown = "(none given)" if path is None else path.name
                if path is not None and problem == "no such file":
                    shown = str(path.absolute())
                problems.append(f"the {label} {shown}: {problem}")
        hashed = dataclasses.replace(
            files, face_sha256=digests.get("photo"), voice_sha256=digests.get("recording")
        )
        if problems:
            message = "; ".join(problems)
            raise Denied.at(Step.INPUT, Reason.BAD_INPUT, message, started, evidence=hashed)
        return step_outcome(
            Step.INPUT, StepStatus.PASSED, started, "both files are readable"
        ), hashed

    def _models(self) -> tuple[StepOutcome, None]:
        started = time.perf_counter()
        try:
            # The settings are checked with the models, however the models were loaded: both
            # are what an operator accepted. Once per authenticator: its settings are fixed.
            if not self._defences_checked:
                check_defences(self.workspace, self.settings.auth)
                self._defences_checked = True
            bundle = self._bundle()
        except MmauthError as error:
            # Untrusted models are a kind of refused models: the most specific reason wins.
            if isinstance(error, WeakenedDefencesError):
                reason = Reason.DEFENCES_WEAKENED
            elif isinstance(error, UntrustedModelsError):
                reason = Reason.MODELS_UNTRUSTED
            elif isinstance(error, ModelIntegrityError):
                reason = Reason.MODELS_REFUSED
            else:
                reason = Reason.MODELS_MISSING
            message = f"{REASONS[reason]}: {error.message}"
            raise Denied.at(Step.MODELS, reason, message, started) from None
        missing = [name for name in BIOMETRIC_MODELS if getattr(bundle, name, None) is None]
        if missing:
            message = (
                f"{REASONS[Reason.MODELS_MISSING]}: no {' and no '.join(missing)} model; "
                "run mmauth train"
            )
            raise Denied.at(Step.MODELS, Reason.MODELS_MISSING, message, started)
        loaded = "face, voice and product models" if bundle.product else "face and voice models"
        return step_outcome(
            Step.MODELS, StepStatus.PASSED, started, f"{loaded} loaded and verified"
        ), None

    def _face(self, media: ProbeMedia) -> tuple[StepOutcome, FaceStepResult]:
        started = time.perf_counter()
        vector = acquire(Step.FACE, self._face_vector, media, Reason.NO_FACE, started)
        match = self._bundle().face.identify(vector)
        if match.member is None:
            message = (
                f"{REASONS[Reason.UNKNOWN_FACE]} (best similarity "
                f"{compare_scores(match.score, match.threshold)})"
            )
            raise Denied.at(
                Step.FACE,
                Reason.UNKNOWN_FACE,
                message,
                started,
                match.score,
                match.threshold,
                evidence=FaceStepResult(None, match),
            )
        message = f"identified as {match.member}"
        outcome = step_outcome(
            Step.FACE, StepStatus.PASSED, started, message, match.score, match.threshold
        )
        return outcome, FaceStepResult(match.member, match)

    def _face_vector(self, media: ProbeMedia) -> np.ndarray:
        if self.features is not None:
            return self.features.face(media.face_path)
        from engine.faces.extract import image_face_vector

        return image_face_vector(media.image(), self.settings)

    def _voice_sample(self, media: ProbeMedia) -> Any:
        if self.features is not None:
            return self.features.voice(media.voice_path)
        from engine.voices.extract import recording_sample

        return recording_sample(media.recording(), self.settings, media.voice_path)

    def _lockout(self, member: str, started_at: float) -> tuple[StepOutcome, None]:
        started = time.perf_counter()
        if not self.lockout:
            message = "lockout not applied (simulation)"
            return step_outcome(Step.LOCKOUT, StepStatus.SKIPPED, started, message), None
        # The lockout state is only as good as the log it comes from: check the chain first.
        chain = self._store().log.check_chain()
        if not chain.intact:
            message = (
                f"{REASONS[Reason.AUDIT_TAMPERED]}: {'; '.join(chain.problems)}. Authentication "
                "is stopped until an operator runs mmauth audit verify and mmauth audit "
                "acknowledge"
            )
            raise Denied.at(Step.LOCKOUT, Reason.AUDIT_TAMPERED, message, started)
        lock = self._store().active_lockout(member, started_at)
        if lock is not None:
            message = (
                f"{member} is locked after {lock.failures} failed attempts; try again in "
                f"{_duration(lock.until - started_at)}"
            )
            raise Denied.at(Step.LOCKOUT, Reason.LOCKED_OUT, message, started)
        return step_outcome(
            Step.LOCKOUT, StepStatus.PASSED, started, f"{member} is not locked"
        ), None

    def _replay(
        self, files: InputStepResult, member: str, media: ProbeMedia
    ) -> tuple[StepOutcome, ReplayStepResult]:
        from engine.auth.replay import photo_fingerprint

        started = time.perf_counter()
        recording_usable = _decodes(media.recording)
        try:
            verdict = self._replay_guard().check_decoded(
                member,
                face_sha256=files.face_sha256,
                voice_sha256=files.voice_sha256,
                face_fingerprint=lambda: photo_fingerprint(media.image().pixels),
                voice_recording=media.recording if recording_usable else None,
            )
        except InputError as error:
            # Only the photo can fail here (the recording was set aside above).
            message = f"the photo cannot be used: {error.message}"
            raise Denied.at(Step.REPLAY, Reason.BAD_INPUT, message, started) from None
        gone = self._not_enrolled(member)
        if gone:
            option = {"photos": "--faces FILES", "recordings": "--voices FILES"}.get(
                gone, "--faces FILES --voices FILES"
            )
            message = (
                f"{REASONS[Reason.ENROLMENT_CHANGED]}: {member} has no enrolment {gone} in this "
                "workspace now (never added, removed, being removed by mmauth remove, or taken "
                "out of data/raw). A member needs both photos and recordings: mmauth enroll "
                f"{member} {option} adds them; mmauth members shows the members"
            )
            raise Denied.at(Step.REPLAY, Reason.ENROLMENT_CHANGED, message, started)
        changed = self._unlearnt(member)
        if changed:
            message = (
                f"{REASONS[Reason.ENROLMENT_CHANGED]}: {changed} of {member}'s enrolment files "
                "the models were trained on are no longer in their folders as they were "
                "(removed, replaced or hidden), so the replay check cannot compare with them. "
                "Put them back, or run mmauth features and mmauth train"
            )
            raise Denied.at(Step.REPLAY, Reason.ENROLMENT_CHANGED, message, started)
        if verdict.suspected:
            message = f"{REASONS[Reason.REPLAY_SUSPECTED]}: {verdict.message}"
            raise Denied.at(
                Step.REPLAY, Reason.REPLAY_SUSPECTED, message, started, verdict.voice_similarity
            )
        auth = self.settings.auth
        outcome = step_outcome(
            Step.REPLAY,
            StepStatus.PASSED,
            started,
            replay_details(verdict, auth, recording_usable=recording_usable),
            verdict.voice_similarity,
            auth.replay_audio_similarity if verdict.voice_similarity is not None else None,
        )
        return outcome, ReplayStepResult(verdict)

    def _not_enrolled(self, member: str) -> str:
        """What the member identified has no enrolment files of now ("photos", "recordings",
        both, or "" when they have both). The models are loaded without the whole-workspace
        check that every member they know is enrolled (engine.models.signing), so that a
        member removed, or being removed, turns away only themselves, not everyone."""
        from engine.auth.replay import FACE, VOICE

        guard = self._replay_guard()
        lacking = [
            what
            for modality, what in ((FACE, "photos"), (VOICE, "recordings"))
            if not guard.samples(member, modality)
        ]
        return " or ".join(lacking)

    def _unlearnt(self, member: str) -> int:
        """How many of the member's enrolment files the signed manifest says the models learnt
        have no record of that content now: an attacker who hides or replaces them would
        otherwise take them out of the replay check. Files added since are fine."""
        from engine.auth.replay import FACE, VOICE

        models = self._bundle().manifest.get("models", {})
        guard = self._replay_guard()
        missing = 0
        for name, modality in ((ModelName.FACE, FACE), (ModelName.VOICE, VOICE)):
            learnt = models.get(name, {}).get("enrolment", {}).get(member)
            if learnt:
                present = {s.sha256[: len(learnt[0])] for s in guard.samples(member, modality)}
                missing += sum(digest not in present for digest in learnt)
        return missing

    def _voice(
        self, face: FaceStepResult, media: ProbeMedia
    ) -> tuple[StepOutcome, VoiceStepResult]:
        started = time.perf_counter()
        sample = acquire(Step.VOICE, self._voice_sample, media, Reason.NO_SPEECH, started)
        match = self._bundle().voice.verify(sample.vector, sample.mfcc_sequence, face.member)
        scores = (
            f"score {compare_scores(match.score, match.threshold)} = voice "
            f"{match.voice_part:+.2f} + words {match.score - match.voice_part:+.2f}; speaker "
            f"{match.speaker_score:.3f}, phrase {match.phrase_score:.3f}"
        )
        result = VoiceStepResult(float(match.score), float(match.threshold))
        if match.accepted:
            said = f", closest to their phrase {match.phrase!r}" if match.phrase else ""
            message = f"{face.member}'s voice{said} ({scores})"
            outcome = step_outcome(
                Step.VOICE, StepStatus.PASSED, started, message, match.score, match.threshold
            )
            return outcome, result
        # The phrase is blamed only when the voice would have passed: the phrase check alone
        # refused it, or the voice's part alone reaches the threshold and the words' part
        # pulled the score under.
        if (not match.phrase_ok and match.score >= match.threshold) or (
            match.voice_part >= match.threshold
        ):
            reason = Reason.PHRASE_MISMATCH
        else:
            reason = Reason.VOICE_MISMATCH
        message = f"{REASONS[reason]} ({scores})"
        raise Denied.at(
            Step.VOICE, reason, message, started, match.score, match.threshold, evidence=result
        )

    # Lazily loaded parts ----------------------------------------------------------------------

    def _bundle(self) -> ModelBundle:
        if self.bundle is None:
            from engine.models.loading import load_model_bundle

            # Each login checks that its own member is still enrolled (_not_enrolled).
            self.bundle = load_model_bundle(
                self.workspace, require=BIOMETRIC_MODELS, for_inference=True, check_members=False
            )
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


def _decodes(decode: Callable[[], Any]) -> bool:
    """Whether a probe file decodes into a usable sample (the refusal is kept for its step)."""
    try:
        decode()
    except MmauthError:
        return False
    return True


def authenticate_many(
    workspace: Workspace,
    settings: Settings,
    pairs: Iterable[tuple[str | Path | None, str | Path | None]],
    *,
    on_step: Callable[[StepOutcome], None] | None = None,
) -> Iterator[AuthDecision]:
    """One attempt per (face, voice) pair, in order, through one Authenticator: the models, the
    audit store and the replay index load once, so a script pays the start-up once."""
    authenticator = Authenticator(workspace, settings)
    for face_path, voice_path in pairs:
        yield authenticator.authenticate(face_path, voice_path, on_step=on_step)


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def replay_details(verdict: ReplayVerdict, auth: AuthSettings, *, recording_usable: bool) -> str:
    """What a passed replay check compared, for the step's message."""
    details = []
    if verdict.face_residual is not None and math.isinf(verdict.face_residual):
        details.append("photo does not register onto any enrolment photo (not a copy)")
    elif verdict.face_residual is not None:
        details.append(
            f"photo differs from the nearest enrolment photo by {verdict.face_residual:.1f} "
            f"grey levels (replay at <= {auth.replay_photo_residual:g})"
        )
    if verdict.voice_similarity is not None:
        details.append(
            f"recording similarity {verdict.voice_similarity:.3f} "
            f"(replay at >= {auth.replay_audio_similarity})"
        )
    if not recording_usable:
        # An unusable recording is the voice step's to report, with its own reason.
        details.append("recording not compared (the voice step says why)")
    return "; ".join(details) or "no enrolment files to compare with"

"""The words of an authentication, owned once: steps, statuses, decisions, reasons, origins.

Each is a ``StrEnum`` whose values are the strings the JSON output, the audit log and saved
reports have always held, so they compare equal to what is read back and serialise unchanged.
The front ends import these (and the formatting helpers below) instead of repeating literals.
"""

from __future__ import annotations

import enum


class Step(enum.StrEnum):
    """The steps of the flow, in the order they run (engine.auth.flow describes each)."""

    INPUT = "input"
    MODELS = "models"
    FACE = "face"
    LOCKOUT = "lockout"
    REPLAY = "replay"
    PRODUCT = "product"
    VOICE = "voice"
    DECISION = "decision"

    @property
    def label(self) -> str:
        """The step's name as a person reads it beside its mark."""
        return _STEP_LABELS[self]


_STEP_LABELS = {
    Step.INPUT: "Files",
    Step.MODELS: "Models",
    Step.FACE: "Face",
    Step.LOCKOUT: "Lockout",
    Step.REPLAY: "Replay",
    Step.PRODUCT: "Product",
    Step.VOICE: "Voice",
    Step.DECISION: "Decision",
}

STEP_NAMES = tuple(Step)


class StepStatus(enum.StrEnum):
    """What became of a step."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Not reached, or (product) could not run without denying."""


class Decision(enum.StrEnum):
    """The outcome of an attempt, as the audit log stores it."""

    GRANTED = "GRANTED"
    DENIED = "DENIED"


class Origin(enum.StrEnum):
    """Who made an attempt; only live attempts count towards a lockout."""

    LIVE = "live"
    SIMULATION = "simulation"


class Reason(enum.StrEnum):
    """Every reason code a decision can carry (``ok`` when granted)."""

    OK = "ok"
    BAD_INPUT = "bad_input"
    MODELS_MISSING = "models_missing"
    MODELS_REFUSED = "models_refused"
    MODELS_UNTRUSTED = "models_untrusted"
    DEFENCES_WEAKENED = "defences_weakened"
    ENROLMENT_CHANGED = "enrolment_changed"
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    UNKNOWN_FACE = "unknown_face"
    LOCKED_OUT = "locked_out"
    REPLAY_SUSPECTED = "replay_suspected"
    NO_SPEECH = "no_speech"
    VOICE_MISMATCH = "voice_mismatch"
    PHRASE_MISMATCH = "phrase_mismatch"
    AUDIT_FAILED = "audit_failed"
    AUDIT_TAMPERED = "audit_tampered"
    INTERNAL_ERROR = "internal_error"

    @property
    def meaning(self) -> str:
        """The reason's short meaning, the start of a denial's message."""
        return REASONS[self]


UNCOUNTED_DENIALS = frozenset({Reason.LOCKED_OUT, Reason.ENROLMENT_CHANGED, Reason.INTERNAL_ERROR})
"""Denials that do not count towards a member's lockout: they say nothing of the person who
presented the files (the member is already locked; the workspace's enrolment files changed;
mmauth itself failed), so counting them would lock a member out for the system's fault."""

REASONS: dict[Reason, str] = {
    Reason.OK: "face and voice verified",
    Reason.BAD_INPUT: "a file could not be used",
    Reason.MODELS_MISSING: "the models are not trained yet",
    Reason.MODELS_REFUSED: "a model file failed its integrity check",
    Reason.MODELS_UNTRUSTED: "the models were not made by this installation for this workspace",
    Reason.DEFENCES_WEAKENED: "the settings loosen a defence this installation accepted",
    Reason.ENROLMENT_CHANGED: "enrolment files the models learnt are missing or changed",
    Reason.NO_FACE: "no face was found in the photo",
    Reason.MULTIPLE_FACES: "the photo shows more than one face of comparable size",
    Reason.UNKNOWN_FACE: "the face does not match any enrolled member",
    Reason.LOCKED_OUT: "this member is locked after repeated failed attempts",
    Reason.REPLAY_SUSPECTED: "a copy of an enrolment sample was presented",
    Reason.NO_SPEECH: "no usable speech was found in the recording",
    Reason.VOICE_MISMATCH: "the voice does not match the member the face identified",
    Reason.PHRASE_MISMATCH: "the words do not match the member's approval phrases closely enough",
    Reason.AUDIT_FAILED: "the attempt could not be written to the audit log",
    Reason.AUDIT_TAMPERED: "the audit log was deleted, truncated or edited",
    Reason.INTERNAL_ERROR: "an unexpected error stopped the check",
}
"""Every reason code with its short meaning."""


class AuditEvent(enum.StrEnum):
    """An operator's action (or the store's own) written to the audit log's chain."""

    ADOPTED = "log_adopted"
    """A log this installation had not seen (new installation, moved workspace) taken as is."""
    ACKNOWLEDGED = "tamper_acknowledged"
    """An operator accepted a deleted, truncated or edited log: authentication resumes."""
    UNLOCKED = "member_unlocked"
    """An operator lifted a member's lockout."""
    MODELS_TRUSTED = "models_trusted"
    """An operator signed models this installation had not made (mmauth models trust)."""


class Integrity(enum.StrEnum):
    """What ``mmauth history`` says of the audit log where it does not verify: on an attempt
    (edited, unchained) or at a place of the chain between attempts (the rest)."""

    EDITED = "edited: hash does not match"
    """The attempt's row was changed after it was written."""
    UNCHAINED = "not in the chain: added by hand"
    DELETED = "deleted"
    """Entries of the chain missing from the database."""
    TAMPERED = "tampered"
    """The log's end is not the one this installation recorded (truncated, deleted, replaced)."""
    ACKNOWLEDGED = "acknowledged"
    """An operator accepted what a check found there."""


def compare_scores(score: float, threshold: float) -> str:
    """``score >= threshold`` or ``score < threshold`` with enough decimals to tell them apart
    (a similarity of 0.99991 against 0.99999 must not read "1.000 < 1.000")."""
    relation = ">=" if score >= threshold else "<"
    decimals = 3
    while decimals < 8 and f"{score:.{decimals}f}" == f"{threshold:.{decimals}f}":
        decimals += 1
    return f"{score:.{decimals}f} {relation} {threshold:.{decimals}f}"


def score_pair(score: float | None, threshold: float | None) -> str:
    """``score/threshold`` with 3 decimals for a table cell, ``-`` when there is no score."""
    if score is None:
        return "-"
    return f"{score:.3f}/{threshold:.3f}" if threshold is not None else f"{score:.3f}"

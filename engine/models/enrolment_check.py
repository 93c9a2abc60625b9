"""Enrolment samples that do not look like what they are filed as: another person's photo or
recording, or a take of the other phrase, in a member's enrolment folder.

A swapped or mislabelled file is the first thing to rule out when a member is turned away: the
model then learns the member from someone else (and lets that person in as the member), or the
phrase check learns a phrase from the wrong word. Training cannot refuse such a file, since
people vary, but it can say which file does not fit and why.

A sample is named when its mean similarity to another group's samples (another member's, or the
member's other phrase's takes) is above its mean similarity to the other samples of its own
group by more than a margin. The comparison is relative, so it needs no threshold on the
similarity's scale, and the mean over a group keeps one odd photo or take from deciding it. The
margins were chosen on the development part of the end-to-end benchmark's people (Yale subjects
1-7, FSDD digits 0-4) for no note on their clean enrolments; docs/BENCHMARKS.md, section
"Enrolment check", measures false notes and caught swaps on both parts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from engine.models._calibration import EPSILON, unit_rows
from engine.models.dtw import dtw_costs

FACE_MARGIN = 0.02
"""Cosine margin for dlib face embeddings: clean development enrolments stay 0.044 or more
below it."""
SPEAKER_MARGIN = 0.2
"""Cosine margin for speaker embeddings (takes of the same phrase). FSDD's six speakers saying
sub-second digits are close together: clean development takes came within 0.15 of it."""
PHRASE_MARGIN = 0.1
"""Margin on minus the DTW cost (scaled MFCC units) between a member's takes of one phrase and
of another: clean development takes stay 0.05 or more below it."""
MAX_NOTES = 5
"""Samples named per model; more are counted, not listed."""


@dataclasses.dataclass(frozen=True)
class Misfit:
    """One enrolment sample closer to another group than to its own."""

    kind: str
    """"face" (photo vs members), "voice" (take vs members' voices) or "phrase" (take vs the
    member's phrases)."""
    source: str
    """The sample's file, as the feature table names it."""
    member: str
    """The member it is enrolled as."""
    group: str
    """What it is filed as: the member, or for "phrase" the phrase."""
    closer_to: str
    """The group it is closest to."""
    own: float
    """Mean similarity to the other samples of its own group."""
    other: float
    """Mean similarity to the samples of ``closer_to``."""

    @property
    def gap(self) -> float:
        """How much closer it is to ``closer_to`` than to its own group."""
        return self.other - self.own


def misfits(
    kind: str,
    similarity: np.ndarray,
    groups: Sequence[str],
    sources: Sequence[str],
    margin: float,
    member: str | None = None,
) -> list[Misfit]:
    """Samples whose mean ``similarity`` (a square matrix, higher = more alike) to another
    group's samples exceeds their mean similarity to their own group's other samples by more
    than ``margin``. A sample alone in its group has nothing to compare with and is skipped.
    ``member``: the member every sample belongs to, when the groups are phrases."""
    labels = np.asarray(groups, dtype=str)
    names = sorted(set(labels.tolist()))
    found = []
    for row, label in enumerate(labels):
        own_rows = np.flatnonzero(labels == label)
        own_rows = own_rows[own_rows != row]
        if own_rows.size == 0 or len(names) < 2:
            continue
        own = float(np.mean(similarity[row, own_rows]))
        others = {name: float(np.mean(similarity[row, labels == name])) for name in names}
        del others[label]
        closest = max(others, key=lambda name: others[name])
        if others[closest] > own + margin:
            found.append(
                Misfit(
                    kind,
                    str(sources[row]),
                    member or str(label),
                    str(label),
                    closest,
                    own,
                    others[closest],
                )
            )
    return found


def face_misfits(
    features: np.ndarray,
    members: Sequence[str],
    sources: Sequence[str],
    margin: float = FACE_MARGIN,
) -> list[Misfit]:
    """Enrolment photos (one row per original photo, dlib embeddings) closer to another
    member's photos than to their own member's (cosine)."""
    unit = unit_rows(np.asarray(features, dtype=float))
    return misfits("face", unit @ unit.T, members, sources, margin)


def voice_misfits(
    embeddings: np.ndarray,
    members: Sequence[str],
    phrases: Sequence[str],
    sequences: Sequence[np.ndarray],
    sources: Sequence[str],
    speaker_margin: float = SPEAKER_MARGIN,
    phrase_margin: float = PHRASE_MARGIN,
) -> list[Misfit]:
    """Enrolment takes (one row per original recording) whose voice is closer to another
    member's takes of the same phrase (cosine of the speaker embeddings), or whose words are closer to the
    member's takes of another phrase (minus the DTW cost of the MFCC sequences, scaled per
    coefficient as the voice model scales them)."""
    # Speaker embeddings of sub-second clips depend on the words: each take is compared with
    # the takes of the same phrase only, which separated swapped takes better.
    unit = unit_rows(np.asarray(embeddings, dtype=float))
    phrase_labels = np.asarray(phrases, dtype=str)
    found = []
    for phrase in sorted(set(phrase_labels.tolist())):
        rows = np.flatnonzero(phrase_labels == phrase).tolist()
        found += misfits(
            "voice",
            unit[rows] @ unit[rows].T,
            [str(members[i]) for i in rows],
            [str(sources[i]) for i in rows],
            speaker_margin,
        )
    frames = np.vstack(sequences)
    mean, scale = frames.mean(axis=0), np.maximum(frames.std(axis=0), EPSILON)
    member_labels = np.asarray(members, dtype=str)
    for member in sorted(set(member_labels.tolist())):
        rows = np.flatnonzero(member_labels == member).tolist()
        scaled = [(np.asarray(sequences[i], dtype=np.float64) - mean) / scale for i in rows]
        found += misfits(
            "phrase",
            -dtw_costs(scaled, scaled),
            [str(phrases[i]) for i in rows],
            [str(sources[i]) for i in rows],
            phrase_margin,
            member=member,
        )
    return found


def describe(misfit: Misfit) -> str:
    """The misfit in words, with its figures."""
    m = misfit
    if m.kind == "face":
        return (
            f"{m.source}, enrolled as {m.member}, looks more like {m.closer_to}'s enrolment "
            f"photos (mean cosine {m.other:.3f}) than {m.member}'s other photos ({m.own:.3f})"
        )
    if m.kind == "voice":
        return (
            f"{m.source}, enrolled as {m.member}, sounds more like {m.closer_to}'s enrolment "
            f"takes (mean cosine {m.other:.3f}) than {m.member}'s other takes ({m.own:.3f})"
        )
    return (
        f"{m.source}, enrolled as {m.member} saying {m.group}, is closer to {m.member}'s takes "
        f"of {m.closer_to} (mean DTW cost {-m.other:.2f}) than to the other takes of {m.group} "
        f"({-m.own:.2f})"
    )


CONSEQUENCES = {
    "face": "a photo of another person teaches the model that face as the member's, turning "
    "the member away and letting that person in as them",
    "voice": "another person's take teaches the model that voice as the member's; a take of "
    "another phrase weakens the phrase check",
}
"""Per model: what a misfiled enrolment file does, for the notes."""


def enrolment_notes(model: str, found: Sequence[Misfit]) -> list[str]:
    """One note per misfit (at most MAX_NOTES, then a count), each saying what the file does
    to the model and what to do."""
    advice = (
        f" ({CONSEQUENCES[model]}). Check the file; if it is misfiled, move it and run mmauth "
        "features and mmauth train again."
    )
    notes = [f"{model}: {describe(m)}{advice}" for m in found[:MAX_NOTES]]
    if len(found) > MAX_NOTES:
        notes.append(
            f"{model}: {len(found) - MAX_NOTES} more enrolment file(s) fit another member or "
            'phrase better than their own (docs/BENCHMARKS.md, "Enrolment check").'
        )
    return notes

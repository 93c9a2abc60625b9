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

from engine.models._calibration import unit_rows
from engine.models.dtw import dtw_costs, frame_scaling

FACE_MARGIN = 0.02
"""Cosine margin for dlib face embeddings."""
SPEAKER_MARGIN = 0.2
"""Cosine margin for speaker embeddings (takes of the same phrase): FSDD's six speakers saying
sub-second digits are close together, so it is the widest of the three."""
PHRASE_MARGIN = 0.1
"""Margin on minus the DTW cost (scaled MFCC units) between a member's takes of one phrase and
of another."""
BLOCK_ROWS = 512
"""Photos checked per block of the similarity matrix."""
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
    phrase: str = ""
    """For "voice": the phrase whose takes were compared."""

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
    rows: Sequence[int] | None = None,
) -> list[Misfit]:
    """Samples whose mean ``similarity`` (higher = more alike) to another group's samples
    exceeds their mean similarity to their own group's other samples by more than ``margin``.

    ``similarity`` holds the checked samples' rows against all n samples: shape (len(rows), n),
    ``rows`` their indices among the n (default: all of them, a square matrix). A sample alone
    in its group has nothing to compare with and is skipped. ``member``: the member every
    sample belongs to, when the groups are phrases.
    """
    names, index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    checked = np.arange(len(index)) if rows is None else np.asarray(rows, dtype=int)
    if len(names) < 2 or checked.size == 0:
        return []
    counts = np.bincount(index, minlength=len(names))
    # Mean similarity to every group at once (columns sorted by group, summed per run); the
    # own group's mean leaves the sample out.
    order = np.argsort(index, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sums = np.add.reduceat(np.asarray(similarity, dtype=float)[:, order], starts, axis=1)
    at = np.arange(checked.size)
    own_group = index[checked]
    others_in_group = counts[own_group] - 1
    own_sum = sums[at, own_group] - similarity[at, checked]
    own = np.divide(
        own_sum, others_in_group, out=np.full(checked.size, np.nan), where=others_in_group > 0
    )
    means = sums / counts
    means[at, own_group] = -np.inf
    closest = means.argmax(axis=1)
    other = means[at, closest]
    named = np.flatnonzero((others_in_group > 0) & (other > own + margin))
    return [
        Misfit(
            kind,
            str(sources[checked[i]]),
            member or str(names[own_group[i]]),
            str(names[own_group[i]]),
            str(names[closest[i]]),
            float(own[i]),
            float(other[i]),
        )
        for i in named
    ]


def face_misfits(
    features: np.ndarray,
    members: Sequence[str],
    sources: Sequence[str],
    margin: float = FACE_MARGIN,
) -> list[Misfit]:
    """Enrolment photos (one row per original photo, dlib embeddings) closer to another
    member's photos than to their own member's (cosine)."""
    unit = unit_rows(np.asarray(features, dtype=float))
    found = []
    # A block of rows at a time keeps memory at BLOCK_ROWS x n similarities.
    for start in range(0, len(unit), BLOCK_ROWS):
        block = list(range(start, min(start + BLOCK_ROWS, len(unit))))
        found += misfits("face", unit[block] @ unit.T, members, sources, margin, rows=block)
    return found


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
    member's takes of the same phrase (cosine of the speaker embeddings), or whose words are
    closer to the member's takes of another phrase (minus the DTW cost of the MFCC sequences,
    scaled per coefficient as the voice model scales them)."""
    # Speaker embeddings of sub-second clips depend on the words: each take is compared with
    # the takes of the same phrase only, which separated swapped takes better.
    unit = unit_rows(np.asarray(embeddings, dtype=float))
    phrase_labels = np.asarray(phrases, dtype=str)
    found = []
    for phrase in sorted(set(phrase_labels.tolist())):
        rows = np.flatnonzero(phrase_labels == phrase).tolist()
        found += [
            dataclasses.replace(m, phrase=phrase)
            for m in misfits(
                "voice",
                unit[rows] @ unit[rows].T,
                [str(members[i]) for i in rows],
                [str(sources[i]) for i in rows],
                speaker_margin,
            )
        ]
    mean, scale = frame_scaling(sequences)
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
            f"{m.source}, enrolled as {m.member}, sounds more like {m.closer_to}'s takes of "
            f"{m.phrase} (mean cosine {m.other:.3f}) than {m.member}'s other takes of {m.phrase} "
            f"({m.own:.3f})"
        )
    return (
        f"{m.source}, enrolled as {m.member} saying {m.group}, is closer to {m.member}'s takes "
        f"of {m.closer_to} (mean DTW cost {-m.other:.2f}) than to the other takes of {m.group} "
        f"({-m.own:.2f})"
    )


CONSEQUENCES = {
    "face": "a photo of another person teaches the model that face as the member's, turning "
    "the member away and letting that person in as them",
    "voice": "another person's take teaches the model that voice as the member's",
    "phrase": "a take of another phrase weakens the phrase check",
}
"""Per kind of misfit: what the misfiled file does, for the notes."""


def enrolment_notes(model: str, found: Sequence[Misfit]) -> list[str]:
    """One note per misfit (at most MAX_NOTES, then a count), each saying what the file does
    to the model and what to do."""
    notes = [
        f"{model}: {describe(m)} ({CONSEQUENCES[m.kind]}). Check the file; if it is misfiled, "
        "move it and run mmauth features and mmauth train again."
        for m in found[:MAX_NOTES]
    ]
    if len(found) > MAX_NOTES:
        notes.append(
            f"{model}: {len(found) - MAX_NOTES} more enrolment file(s) fit another member or "
            'phrase better than their own (docs/BENCHMARKS.md, "Enrolment check").'
        )
    return notes

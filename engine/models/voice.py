"""Text-dependent speaker verification: is a clip the claimed member's voice saying one of their
enrolled phrases?

The thresholds are calibrated on held-out scores (engine.models._calibration describes the
protocol); the phrase evidence is the DTW cost of engine.models.dtw.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from engine.core.blas import single_threaded_blas
from engine.core.errors import EnrolmentError, InputError
from engine.core.metrics import threshold_at_fmr
from engine.core.progress import ProgressCallback, no_progress
from engine.models._calibration import (
    VOICE_IMPOSTOR_TAIL,
    check_groups,
    check_held_out_sources,
    check_labels,
    cross_fitted_false_matches,
    held_out_fits,
    max_per_member,
    mean_and_scale,
    original_rows,
    report_calibrated,
    threshold_by_rule,
    unit_rows,
    validated_rows_and_labels,
    verification_evaluation,
)
from engine.models._estimator import Estimator, check_fitted, checked_rows
from engine.models.dtw import dtw_costs, frame_scaling

VOICE_THRESHOLD_RULES = ("auto", "population", "gaussian_tail")
"""The values of ``VoiceVerifier``'s ``threshold_rule``."""


@dataclasses.dataclass(frozen=True)
class VoiceMatch:
    """The voice model's answer for one recording and a claimed member."""

    accepted: bool
    """True when the voice matches the claimed member and the phrase is one of theirs."""
    score: float
    """Combined speaker + phrase score (higher = more alike)."""
    threshold: float
    """The combined score must reach it."""
    speaker_score: float
    """Similarity of the voice to the claimed member's enrolled voice."""
    phrase_score: float
    """Phrase evidence of the closest enrolled phrase: minus its DTW cost, relative to the cost
    of the member's takes played backwards (see ``VoiceVerifier``)."""
    phrase: str | None
    """The closest of the claimed member's enrolled phrases (None when the member has none)."""
    phrase_ok: bool
    """True when the phrase matches the enrolled takes closely enough."""
    voice_part: float = math.nan
    """The speaker evidence's share of ``score`` (z-normalised against impostors); the rest,
    ``score - voice_part``, is the words' (the weighted DTW evidence). A denial whose voice
    part alone reaches the threshold was pulled under by the words."""


class VoiceVerifier(Estimator):
    """Text-dependent speaker verification: is this the claimed member's voice, saying one of
    the member's enrolled approval phrases?

    Speaker evidence: the cosine of the clip's pretrained speaker embedding
    (engine.voices.embedding, the rows of ``X``) with the closest of the claimed member's
    enrolled takes. The encoder learnt from thousands of speakers and sessions what a speaker
    model fitted on one enrolment session cannot; it replaced a logistic regression over the
    members on clip statistics (docs/BENCHMARKS.md, section "Voice factor"), and enrolling a
    member changes no other member's templates. DTW evidence: minus the
    length-normalised DTW cost of the probe's MFCC sequence against the member's enrolled takes
    (best take); same speaker and same phrase give the lowest cost. Both are z-normalised with held-out impostor scores and added,
    ``phrase_weight`` weighing the DTW term. Accepted when the combined score reaches
    ``threshold_`` and the phrase evidence passes the phrase check ``phrase_threshold_`` (a
    separate decision).

    The phrase evidence is speaker-normalised: minus the DTW cost to the closest take of the
    claimed member, plus ``phrase_reference_weight`` times the cost to the closest of the
    member's takes played backwards (the reference). A reversed take has the member's voice,
    recording session and spectrum but no word, so the reference measures how far the probe is
    from "this voice saying nothing the member enrolled": a later session moves the cost to
    the right phrase and to the reference alike, while a word the member never enrolled is
    about as far from both. Every member has a reference, whatever phrases they enrolled. The
    member's other phrase as the reference separated wrong phrases less (docs/BENCHMARKS.md,
    section "Voice factor").

    The defaults come from enrolment-only cross-validation of FSDD benchmark workspaces. The
    DTW weight was chosen on FSDD's development digits (0-4; ``python -m
    benchmarks.voice_designs``, never the test digits): 1.25 has the lowest mean of the EERs
    against members and strangers (docs/BENCHMARKS.md, section "Voice designs on development
    digits"); the phrase reference weight and the normal-tail rule of the combined threshold
    were chosen on the decisions at the calibrated thresholds on those digits (section "Voice
    factor"). The closest take scored better than the mean of the member's takes there.

    Parameters
    ----------
    target_fmr : float, default=0.01
        False match rate the thresholds are set to.
    phrase_weight : float, default=1.25
        Weight of the z-normalised DTW evidence in the combined score.
    phrase_reference_weight : float, default=0.5
        Weight of the cost to the member's reversed takes in the phrase evidence (0: raw
        cost).
    use_augmented : bool, default=False
        Enrol augmented copies as DTW and speaker templates too (see ``fit``).
    threshold_rule : {"auto", "population", "gaussian_tail"}, default="auto"
        How ``threshold_`` is set. "population" takes the operating point at ``target_fmr`` of
        the combined score's impostor tail measured over many member sets
        (``engine.models._calibration.VOICE_IMPOSTOR_TAIL``): the score is already
        z-normalised against the workspace's own impostors, so only the tail rule is shared.
        "gaussian_tail" fits the tail on the workspace's held-out impostors alone: with four
        members, one close pair moved it for everyone, and the calibrated threshold swung from
        1.9 to 5.7 between development workspaces (half of some members' takes refused, 3% of
        strangers accepted in others; docs/BENCHMARKS.md, section "Voice threshold from a
        population"). "auto" is "population" for targets of 0.5% and above, where the tail was
        measured, and "gaussian_tail" for stricter ones.
    cv_splits : int, default=3
        Folds of the grouped cross-validation producing held-out scores.
    random_state : int, default=0
        Seed of the fold assignment.

    Attributes
    ----------
    members_ : list of str
        Enrolled members, sorted; the columns of ``score_claims``.
    threshold_ : float
        The combined score must reach it (see ``threshold_rule``).
    phrase_threshold_ : float
        The phrase check: the phrase evidence of the closest enrolled phrase must reach it.
    evaluation_ : dict
        Held-out figures of the calibration (accuracy, f1_score, eer against members and
        strangers, fmr cross-fitted, fnmr, wrong-phrase acceptance, counts, the genuine and
        impostor scores, protocol).
    speaker_norm_, dtw_norm_ : tuple of (float, float)
        Mean and scale of the held-out impostor speaker and DTW evidence (z-normalisation).
    speaker_templates_ : ndarray of shape (n_takes, n_features)
        The enrolled takes' unit-norm speaker embeddings, in ``take_members_`` order.
    sequence_mean_, sequence_scale_ : ndarray of shape (n_coefficients,)
        Per-coefficient scaling of MFCC frames before the DTW.
    take_sequences_ : list of ndarray
        The enrolled takes' scaled MFCC sequences, sorted by member.
    take_members_, take_phrases_ : ndarray of shape (n_takes,)
        Member and phrase of each take.
    take_starts_ : ndarray of shape (n_members,)
        Index of each member's first take.
    member_phrases_ : dict of str to list of str
        The phrases each member enrolled.
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    engine.models.face.FaceIdentifier : the face model of the first factor.
    engine.models.dtw.dtw_cost : the phrase evidence.

    Examples
    --------
    >>> import numpy as np
    >>> from engine.models import VoiceVerifier
    >>> rng = np.random.default_rng(0)
    >>> voices = {name: rng.normal(size=6) for name in ("ana", "ben", "eve")}
    >>> phrase = rng.normal(size=(20, 4))
    >>> X = np.vstack([voice + rng.normal(0, 0.1, (6, 6)) for voice in voices.values()])
    >>> y = np.repeat(list(voices), 6)
    >>> def take(name):  # the phrase's MFCC frames, coloured by the speaker's voice
    ...     return phrase + voices[name][:4] + rng.normal(0, 0.1, phrase.shape)
    >>> takes = [take(name) for name in y]
    >>> model = VoiceVerifier().fit(X, y, phrases=["yes"] * len(y), sequences=takes)
    >>> model.verify(voices["ana"], take("ana"), claimed_member="ana").accepted
    True
    >>> model.verify(voices["ana"], take("ana"), claimed_member="ben").accepted
    False
    """

    def __init__(
        self,
        target_fmr: float = 0.01,
        phrase_weight: float = 1.25,
        phrase_reference_weight: float = 0.5,
        use_augmented: bool = False,
        threshold_rule: str = "auto",
        cv_splits: int = 3,
        random_state: int = 0,
    ) -> None:
        self.target_fmr = target_fmr
        self.phrase_weight = phrase_weight
        self.phrase_reference_weight = phrase_reference_weight
        self.use_augmented = use_augmented
        self.threshold_rule = threshold_rule
        self.cv_splits = cv_splits
        self.random_state = random_state

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        phrases: ArrayLike,
        sequences: Sequence[np.ndarray],
        groups: ArrayLike | None = None,
        augmented: ArrayLike | None = None,
        *,
        progress: ProgressCallback = no_progress,
        cancel: threading.Event | None = None,
    ) -> VoiceVerifier:
        """Enrol every member's clips (vectors, phrase labels and MFCC sequences) and calibrate
        the thresholds on held-out scores.

        ``augmented`` flags rows that are augmented copies. They are never scored during
        calibration: probes are never augmented, and some copies are not realistic attempts (a
        pitch-shifted voice is another voice; babble noise mixes in other members' enrolment
        takes). With ``use_augmented=False`` (the default) they are not templates: as
        templates they made the held-out EER against strangers worse on enrolment-only
        cross-validation of FSDD (docs/BENCHMARKS.md, section "Results before this change").
        """
        rows, labels = validated_rows_and_labels(self, X, y, dtype=np.float64, ensure_min_samples=2)
        labels = labels.astype(str)
        phrase_labels = check_labels(phrases, "phrases", len(labels))
        row_groups = check_groups(groups, len(labels))
        sequences = _check_sequences(sequences, len(labels))
        original = original_rows(augmented, len(labels))
        if not self.use_augmented:
            rows, labels = rows[original], labels[original]
            phrase_labels, row_groups = phrase_labels[original], row_groups[original]
            sequences = [s for s, keep in zip(sequences, original, strict=True) if keep]
            original = original[original]
        if len(np.unique(labels)) < 2:
            raise EnrolmentError("at least 2 members are needed to calibrate against impostors")
        check_held_out_sources(labels, row_groups, ("recording", "recordings"), phrase_labels)
        with single_threaded_blas():
            self._fit_templates(rows, labels, phrase_labels, sequences, original)
            self._calibrate(
                rows, labels, phrase_labels, sequences, row_groups, original, progress, cancel
            )
        return self

    def _fit_templates(
        self,
        X: np.ndarray,
        y: np.ndarray,
        phrases: np.ndarray,
        sequences: list[np.ndarray],
        original: np.ndarray,
    ) -> VoiceVerifier:
        """Speaker and DTW templates from the original rows (every row with
        ``use_augmented``)."""
        if not self.use_augmented:
            X, y, phrases = X[original], y[original], phrases[original]
            sequences = [s for s, keep in zip(sequences, original, strict=True) if keep]
        order = np.argsort(y, kind="stable")
        self.members_ = [str(m) for m in np.unique(y)]
        self.sequence_mean_, self.sequence_scale_ = frame_scaling(sequences)
        # Plain lists and arrays (no tuple keys) so that skops can persist them; sorted by
        # member like the speaker model's columns.
        self.take_sequences_ = [self._scale_sequence(sequences[i]) for i in order]
        self.take_members_ = y[order]
        self.take_phrases_ = phrases[order]
        self.take_starts_ = np.unique(self.take_members_, return_index=True)[1]
        self.speaker_templates_ = unit_rows(X[order])
        self.member_phrases_ = {m: sorted({str(p) for p in phrases[y == m]}) for m in self.members_}
        return self

    def _scale_sequence(self, sequence: np.ndarray) -> np.ndarray:
        return (np.asarray(sequence, dtype=np.float64) - self.sequence_mean_) / self.sequence_scale_

    # ---- raw scores (before z-normalisation)

    def _speaker_scores(self, X: np.ndarray) -> np.ndarray:
        """Speaker similarity per member, shape (n_rows, n_members): the cosine with the
        member's closest enrolled take (columns in sorted member order)."""
        return max_per_member(unit_rows(X) @ self.speaker_templates_.T, self.take_starts_)

    def _evidence(
        self,
        X: np.ndarray,
        sequences: Sequence[np.ndarray],
        columns: Sequence[int] | None = None,
    ) -> _VoiceEvidence:
        """Rows against members (arrays of shape (n_rows, n_members)). ``columns``: the only
        members whose DTW evidence is needed (the others' entries are NaN): the DTW against
        every take and its reversal is most of an attempt's voice cost, and a login needs one
        member's."""
        speaker = self._speaker_scores(X)
        blocks = self._take_blocks()
        chosen = range(len(blocks)) if columns is None else sorted(set(columns))
        takes = [self.take_sequences_[i] for c in chosen for i in range(*blocks[c])]
        costs = np.full((len(sequences), len(self.members_)), np.nan)
        references = np.full(costs.shape, np.nan)
        matched = np.full(costs.shape, None, dtype=object)
        # The chosen members' takes, then the same takes played backwards (the references).
        all_costs = dtw_costs(
            [self._scale_sequence(s) for s in sequences],
            [*takes, *(take[::-1] for take in takes)],
        )
        offset = 0
        for column in chosen:
            start, stop = blocks[column]
            width = stop - start
            take_costs = all_costs[:, offset : offset + width]
            best = np.argmin(take_costs, axis=1)
            costs[:, column] = take_costs[np.arange(len(sequences)), best]
            matched[:, column] = [str(phrase) for phrase in self.take_phrases_[start + best]]
            reversed_costs = all_costs[:, len(takes) + offset : len(takes) + offset + width]
            references[:, column] = reversed_costs.min(axis=1)
            offset += width
        phrase = -(costs - self.phrase_reference_weight * references)
        # The combined score keeps the raw cost: the speaker's own voice is evidence there.
        return _VoiceEvidence(speaker=speaker, dtw=-costs, phrase=phrase, matched=matched)

    def _take_blocks(self) -> list[tuple[int, int]]:
        bounds = [*self.take_starts_.tolist(), len(self.take_members_)]
        return list(itertools.pairwise(bounds))

    def _combine(self, speaker: np.ndarray, dtw: np.ndarray) -> np.ndarray:
        """z-normalised speaker evidence plus weighted z-normalised DTW evidence."""
        dtw_z = (dtw - self.dtw_norm_[0]) / self.dtw_norm_[1]
        return self._speaker_z(speaker) + self.phrase_weight * dtw_z

    def _speaker_z(self, speaker: np.ndarray) -> np.ndarray:
        """The speaker evidence's part of the combined score."""
        return (speaker - self.speaker_norm_[0]) / self.speaker_norm_[1]

    # ---- calibration

    def _calibrate(
        self,
        X: np.ndarray,
        y: np.ndarray,
        phrases: np.ndarray,
        sequences: list[np.ndarray],
        groups: np.ndarray,
        scored: np.ndarray,
        progress: ProgressCallback,
        cancel: threading.Event | None,
    ) -> None:
        from sklearn.base import clone

        stage = "train.voice"
        collected = _HeldOutVoiceScores()
        steps = 0

        def fit(train: np.ndarray) -> VoiceVerifier:
            return clone(self)._fit_templates(
                X[train],
                y[train],
                phrases[train],
                [sequences[i] for i in np.flatnonzero(train)],
                scored[train],
            )

        for fitted in held_out_fits(
            y,
            groups,
            fit,
            cv_splits=self.cv_splits,
            random_state=self.random_state,
            stage=stage,
            files=("recording", "recordings"),
            progress=progress,
            cancel=cancel,
        ):
            rows = fitted.held_out & scored
            if fitted.stranger is None:
                rows &= np.isin(y, fitted.model.members_)
            collected.add(
                fitted.model,
                X,
                y,
                phrases,
                sequences,
                np.flatnonzero(rows),
                stranger=fitted.stranger is not None,
            )
            steps += 1
        self._set_thresholds(collected, n_train=len(X))
        report_calibrated(
            progress, stage, steps, {k: self.evaluation_[k] for k in ("eer", "fmr", "fnmr")}
        )

    def _set_thresholds(self, collected: _HeldOutVoiceScores, *, n_train: int) -> None:
        scores = collected.arrays()
        kind, owners = scores["kind"], scores["owner"]
        impostor = kind != "genuine"
        enrolled = scores["phrase_enrolled"]
        # Phrase check: attempts saying a phrase the claimed member never enrolled are the
        # phrase impostors. When every clip says an enrolled phrase (no such attempts), the check
        # only refuses what is further than every held-out genuine take.
        genuine = (kind == "genuine") & enrolled
        if np.any(~enrolled):
            self.phrase_threshold_ = threshold_at_fmr(scores["phrase"][~enrolled], self.target_fmr)
        elif np.any(genuine):
            self.phrase_threshold_ = float(np.min(scores["phrase"][genuine]))
        else:
            self.phrase_threshold_ = -math.inf
        phrase_ok = scores["phrase"] >= self.phrase_threshold_
        self.speaker_norm_ = mean_and_scale(scores["speaker"][impostor])
        self.dtw_norm_ = mean_and_scale(scores["dtw"][impostor])
        combined = self._combine(scores["speaker"], scores["dtw"])
        # Impostors refused by the phrase check cannot be false matches: the threshold is set on
        # those that get past it, which keeps the overall FMR at or under the target.
        candidates = impostor & phrase_ok
        calibration = candidates if np.any(candidates) else impostor
        self.threshold_ = self._threshold(combined[calibration])
        accepted = (combined >= self.threshold_) & phrase_ok
        false_matches = cross_fitted_false_matches(
            combined[calibration],
            owners[calibration],
            self.target_fmr,
            lambda impostor, _target: self._threshold(impostor),
        )
        self.evaluation_ = verification_evaluation(combined, accepted, genuine, kind)
        self.evaluation_.update(
            fmr=false_matches / int(np.sum(impostor)),
            false_matches=false_matches,
            threshold=float(self.threshold_),
            target_fmr=float(self.target_fmr),
            n_train=int(n_train),
            phrase_threshold=float(self.phrase_threshold_),
            wrong_phrase_acceptance=(
                float(np.mean(phrase_ok[~enrolled])) if np.any(~enrolled) else math.nan
            ),
            n_wrong_phrase=int(np.sum(~enrolled)),
        )

    def _threshold(self, impostor: np.ndarray) -> float:
        """The threshold ``threshold_rule`` sets on these impostor scores (combined, past the
        phrase check). The workspace's own tail is the normal fit's, never the empirical
        quantile alone: a few hundred impostor scores of one recording session put the 1% point
        at about the third-highest, which let strangers' later takes through more often than
        the target (docs/BENCHMARKS.md, section "Voice factor")."""
        return threshold_by_rule(
            self.threshold_rule,
            impostor,
            self.target_fmr,
            allowed_rules=VOICE_THRESHOLD_RULES,
            population_tail=VOICE_IMPOSTOR_TAIL,
        )

    # ---- verification

    def score_claims(
        self,
        X: ArrayLike,
        sequences: Sequence[np.ndarray],
        columns: Sequence[int] | None = None,
    ) -> ClaimScores:
        """Every row against every member's claim at once (the DTW runs once per row and
        enrolled take), arrays of shape (n_rows, n_members) in ``members_`` order; with
        ``columns``, only those members' claims are scored (the others are NaN, never
        accepted)."""
        check_fitted(self, "threshold_")
        X = checked_rows(self, X)
        with single_threaded_blas():
            evidence = self._evidence(X, _check_sequences(sequences, len(X)), columns)
        combined = self._combine(evidence.speaker, evidence.dtw)
        phrase_ok = evidence.phrase >= self.phrase_threshold_
        return ClaimScores(
            combined=combined,
            speaker=evidence.speaker,
            phrase=evidence.phrase,
            matched=evidence.matched,
            phrase_ok=phrase_ok,
            accepted=phrase_ok & (combined >= self.threshold_),
        )

    def decision_scores(
        self, X: ArrayLike, sequences: Sequence[np.ndarray], claims: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str | None]]:
        """Vectorised verification: (combined, speaker, phrase scores, matched phrases) of each
        row against its own claimed member."""
        check_fitted(self, "threshold_")
        unknown = sorted(set(map(str, claims)) - set(self.members_))
        if unknown:
            raise EnrolmentError(f"not enrolled in the voice model: {', '.join(unknown)}")
        columns = np.searchsorted(self.members_, np.asarray(claims, dtype=str))
        scores = self.score_claims(X, sequences, columns.tolist())
        rows = np.arange(len(scores.combined))
        return (
            scores.combined[rows, columns],
            scores.speaker[rows, columns],
            scores.phrase[rows, columns],
            list(scores.matched[rows, columns]),
        )

    def verify(
        self, vector: ArrayLike, mfcc_sequence: np.ndarray, claimed_member: str
    ) -> VoiceMatch:
        """Does this clip carry the claimed member's voice saying one of their phrases?"""
        combined, speaker, phrase, matched = self.decision_scores(
            np.asarray(vector, dtype=np.float64).reshape(1, -1), [mfcc_sequence], [claimed_member]
        )
        phrase_ok = bool(phrase[0] >= self.phrase_threshold_)
        score = float(combined[0])
        return VoiceMatch(
            accepted=bool(phrase_ok and score >= self.threshold_),
            score=score,
            threshold=float(self.threshold_),
            speaker_score=float(speaker[0]),
            phrase_score=float(phrase[0]),
            phrase=matched[0],
            phrase_ok=phrase_ok,
            voice_part=float(self._speaker_z(speaker[:1])[0]),
        )


@dataclasses.dataclass(frozen=True)
class ClaimScores:
    """Voice scores of rows against every member's claim, arrays (n_rows, n_members)."""

    combined: np.ndarray
    """Combined score compared with ``threshold_``."""
    speaker: np.ndarray
    """Speaker evidence: the embedding's cosine with the closest enrolled take."""
    phrase: np.ndarray
    """Phrase evidence against the claimed member's takes (the phrase check)."""
    matched: np.ndarray
    """The claimed member's enrolled phrase closest to the clip."""
    phrase_ok: np.ndarray
    """The phrase check passed."""
    accepted: np.ndarray
    """Both the combined threshold and the phrase check passed."""


@dataclasses.dataclass(frozen=True)
class _VoiceEvidence:
    """Scores of rows against every member, arrays of shape (n_rows, n_members)."""

    speaker: np.ndarray
    """Speaker similarity: the embedding's cosine with the closest enrolled take."""
    dtw: np.ndarray
    """Minus the best DTW cost: speaker and phrase."""
    phrase: np.ndarray
    """Minus the best DTW cost relative to the reference: the phrase check compares it with
    phrase_threshold_."""
    matched: np.ndarray
    """The enrolled phrase of the best take."""


def _check_sequences(sequences: Sequence[np.ndarray], n_rows: int) -> list[np.ndarray]:
    checked = [np.asarray(s, dtype=np.float64) for s in sequences]
    if len(checked) != n_rows:
        raise InputError(f"{len(checked)} MFCC sequences for {n_rows} feature rows")
    widths = {s.shape[1] for s in checked if s.ndim == 2}
    if any(s.ndim != 2 or len(s) == 0 for s in checked) or len(widths) > 1:
        raise InputError("every MFCC sequence must be a non-empty frames x coefficients array")
    return checked


class _HeldOutVoiceScores:
    """Scores collected during calibration, one entry per (held-out clip, claimed member)."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {
            name: []
            for name in (
                "speaker",
                "dtw",
                "phrase",
                "kind",
                "owner",
                "phrase_enrolled",
            )
        }

    def add(
        self,
        model: VoiceVerifier,
        X: np.ndarray,
        y: np.ndarray,
        phrases: np.ndarray,
        sequences: list[np.ndarray],
        rows: np.ndarray,
        *,
        stranger: bool,
    ) -> None:
        """Score held-out ``rows`` against every member of ``model`` (a model not fitted on
        them): their own member is the genuine claim, the others impostor claims."""
        if rows.size == 0:
            return
        evidence = model._evidence(X[rows], [sequences[i] for i in rows])
        for column, claim in enumerate(model.members_):
            if stranger:
                kind = np.full(rows.size, "stranger")
            else:
                kind = np.where(y[rows] == claim, "genuine", "member")
            enrolled = set(model.member_phrases_[claim])
            self.columns["speaker"] += list(evidence.speaker[:, column])
            self.columns["dtw"] += list(evidence.dtw[:, column])
            self.columns["phrase"] += list(evidence.phrase[:, column])
            self.columns["kind"] += list(kind)
            self.columns["owner"] += list(y[rows])
            self.columns["phrase_enrolled"] += [p in enrolled for p in phrases[rows]]

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(values) for name, values in self.columns.items()}

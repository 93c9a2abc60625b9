"""Fusion of the face and voice decisions: the AND rule, or one threshold on the sum of their
z-normalised scores."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from engine.core.metrics import threshold_at_fmr
from engine.models._calibration import eer_or_nan, mean_and_scale

if TYPE_CHECKING:
    from engine.models.face import FaceIdentifier, FaceMatch
    from engine.models.voice import VoiceMatch, VoiceVerifier

_MAX_CHIMERIC_PAIRS = 200_000
"""Chimeric pairs are sampled beyond this many, to bound memory and time."""


@dataclasses.dataclass(frozen=True)
class FusionDecision:
    """The combined face + voice decision."""

    accepted: bool
    """True when the fusion rule accepts the attempt."""
    rule: str
    """``and`` (both modalities pass their own threshold) or ``score`` (fused score threshold)."""
    fused_score: float
    """Sum of the z-normalised face and voice scores."""
    threshold: float
    """Threshold of the fused score (used by the ``score`` rule; reported for ``and``)."""
    face_ok: bool
    """The face score reached the face model's threshold."""
    voice_ok: bool
    """The voice model accepted (voice threshold and phrase check)."""


class ScoreFusion(BaseEstimator):
    """Face + voice decision: the AND rule, or a threshold on the sum of z-normalised scores.

    The normalisation uses each modality's held-out impostor scores; the fused threshold is set
    at ``target_fmr`` on chimeric impostor pairs (every face impostor score with every voice
    impostor score, sampled when there are too many), i.e. assuming a stranger's face and voice
    scores are independent. The phrase check stays mandatory under both rules.

    Parameters
    ----------
    rule : {"and", "score"}, default="and"
        "and": both models accept on their own thresholds; "score": the fused score reaches
        ``threshold_`` (and the voice's phrase check passes).
    target_fmr : float, default=0.01
        False match rate of chimeric impostor pairs the fused threshold is set to.
    random_state : int, default=0
        Seed of the sampling of chimeric pairs.

    Attributes
    ----------
    threshold_ : float
        Threshold of the fused score.
    face_norm_, voice_norm_ : tuple of (float, float)
        Mean and scale of each modality's impostor scores (z-normalisation).
    evaluation_ : dict
        Figures on the chimeric pairs: eer, fmr, fnmr, threshold, counts and the fused genuine
        and impostor scores.

    See Also
    --------
    engine.models.face.FaceIdentifier, engine.models.voice.VoiceVerifier : the fused models;
        ``from_models`` calibrates on their held-out scores.

    Examples
    --------
    >>> from engine.models import ScoreFusion
    >>> fusion = ScoreFusion(rule="score").fit(
    ...     face_genuine=[0.9, 0.8, 0.85],
    ...     face_impostor=[0.1, 0.2, 0.3, 0.25],
    ...     voice_genuine=[2.0, 2.5, 1.8],
    ...     voice_impostor=[-1.0, -0.5, 0.0, -0.2],
    ... )
    >>> bool(fusion.fused(0.9, 2.0) >= fusion.threshold_)
    True
    >>> bool(fusion.fused(0.2, -0.5) >= fusion.threshold_)
    False
    """

    def __init__(self, rule: str = "and", target_fmr: float = 0.01, random_state: int = 0) -> None:
        self.rule = rule
        self.target_fmr = target_fmr
        self.random_state = random_state

    def fit(
        self,
        face_genuine: ArrayLike,
        face_impostor: ArrayLike,
        voice_genuine: ArrayLike,
        voice_impostor: ArrayLike,
    ) -> ScoreFusion:
        """Calibrate from held-out genuine and impostor scores of each modality."""
        if self.rule not in ("and", "score"):
            raise ValueError(f"rule must be 'and' or 'score', not {self.rule!r}")
        face_impostor = np.asarray(face_impostor, dtype=np.float64)
        voice_impostor = np.asarray(voice_impostor, dtype=np.float64)
        self.face_norm_ = mean_and_scale(face_impostor)
        self.voice_norm_ = mean_and_scale(voice_impostor)
        rng = np.random.default_rng(self.random_state)
        impostor = self._chimeric(face_impostor, voice_impostor, rng)
        genuine = self._chimeric(
            np.asarray(face_genuine, dtype=np.float64),
            np.asarray(voice_genuine, dtype=np.float64),
            rng,
        )
        self.threshold_ = threshold_at_fmr(impostor, self.target_fmr)
        self.evaluation_ = {
            "eer": eer_or_nan(genuine, impostor),
            "fmr": float(np.mean(impostor >= self.threshold_)),
            "fnmr": float(np.mean(genuine < self.threshold_)) if genuine.size else math.nan,
            "threshold": float(self.threshold_),
            "n_genuine": int(genuine.size),
            "n_impostor": int(impostor.size),
            "genuine": genuine,
            "impostor": impostor,
        }
        return self

    @classmethod
    def from_models(
        cls, face: FaceIdentifier, voice: VoiceVerifier, rule: str = "and", random_state: int = 0
    ) -> ScoreFusion:
        """A fusion calibrated on the two fitted models' held-out scores."""
        face_eval, voice_eval = face.evaluation_, voice.evaluation_
        return cls(rule=rule, target_fmr=face.target_fmr, random_state=random_state).fit(
            face_eval["genuine"],
            face_eval["impostor"],
            voice_eval["genuine"],
            voice_eval["impostor"],
        )

    def _chimeric(
        self, face: np.ndarray, voice: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        if face.size == 0 or voice.size == 0:
            return np.empty(0)
        if face.size * voice.size <= _MAX_CHIMERIC_PAIRS:
            return self.fused(face[:, None], voice[None, :]).ravel()
        return self.fused(
            rng.choice(face, _MAX_CHIMERIC_PAIRS), rng.choice(voice, _MAX_CHIMERIC_PAIRS)
        )

    def fused(self, face_score: ArrayLike, voice_score: ArrayLike) -> np.ndarray:
        """Sum of the z-normalised scores."""
        face_z = (np.asarray(face_score, dtype=np.float64) - self.face_norm_[0]) / self.face_norm_[
            1
        ]
        voice_z = (
            np.asarray(voice_score, dtype=np.float64) - self.voice_norm_[0]
        ) / self.voice_norm_[1]
        return face_z + voice_z

    def decide(self, face: FaceMatch, voice: VoiceMatch) -> FusionDecision:
        """Accept or refuse one attempt from the two models' answers."""
        check_is_fitted(self, "threshold_")
        fused = float(self.fused(face.score, voice.score))
        face_ok = face.score >= face.threshold
        voice_ok = voice.accepted
        if self.rule == "and":
            accepted = face_ok and voice_ok
        else:
            accepted = voice.phrase_ok and fused >= self.threshold_
        return FusionDecision(
            accepted=bool(accepted),
            rule=self.rule,
            fused_score=fused,
            threshold=float(self.threshold_),
            face_ok=bool(face_ok),
            voice_ok=bool(voice_ok),
        )

"""Voice verification designs compared on FSDD, with development and test digits kept apart.

    .venv/bin/python -m benchmarks.voice_designs [--digits dev|test|all] [--designs NAME ...]
        [--dtw-weights W ...] [--splits N]
    .venv/bin/python -m benchmarks.voice_designs --calibrated [KEY=VALUE,... ...] [--splits N]
    .venv/bin/python -m benchmarks.voice_designs --impostor-tail [--digits dev|test] [--splits N]

The protocol is benchmarks.accuracy's voice protocol (4 members and 2 strangers over all 15
splits; members enrol with takes 0-4 of two digits; probes are takes 5-49 of those digits from
all six speakers; EER of the genuine attempts against other members' and strangers' attempts,
mean over splits), computed in memory from clips cleaned once by the product's loader
(engine.voices.audio.load_recording, ``min_speech_s`` 0.1 as in benchmarks.accuracy). The two digits of
a split are drawn from a pool: ``dev`` = 0-4, where designs are compared, ``test`` = 5-9, kept
for measuring the design chosen, ``all`` = 0-9 as benchmarks.accuracy draws them.

Designs: the product's VoiceVerifier on its clip vector, the pretrained speaker embedding
(its combined score; its speaker evidence alone; its DTW evidence alone; with
``--dtw-weights``, other weights of its DTW evidence than the default) and classical
alternatives for the speaker
evidence that are not in the product: logistic regression on MFCC mean and standard deviation
(the issue's baseline), the same on the clip statistics (benchmarks.clip_statistics, the
product's speaker features before the embedding) plus a 0-4 kHz long-term
average spectrum, a GMM-UBM (16 diagonal components on MFCC + delta frames of the enrolled
members, MAP-adapted means, average frame log-likelihood ratio) and a frame-level MLP (stacked
+-2 frames, mean log posterior). None of them reaches the product's combined score on the
development digits (docs/BENCHMARKS.md).

``--calibrated`` reports what the product decides instead of EERs: the product's model (its
defaults, then each variant of VoiceVerifier parameters given, e.g. ``phrase_weight=2``) at the
thresholds it calibrates itself on the enrolment takes, no oracle threshold. Pooled over the
splits with Wilson intervals: FNMR of the members' later takes (and how many of them the phrase
check refused; per speaker), FMR of other members' and strangers' later takes claiming each
member, and the acceptance of each member's own 50 takes of the split's third digit, which
nobody enrolled (overall, and by the phrase check alone). A design that only moves along the
FNMR-FMR trade-off shows as such in the last figure: the FNMR once every split's threshold is
shifted by the same margin to a pooled stranger FMR of 0.5% and 1%. Tune on ``dev`` only.

``--impostor-tail`` fits the population tail of the product's combined score over the pooled
impostor attempts (other members and strangers): ``VOICE_IMPOSTOR_TAIL`` comes from
``--impostor-tail --digits dev``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import itertools
import os
import platform
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.clip_statistics import FrameFeatures, frame_features, summarise
from engine.core.metrics import equal_error_rate, format_rate, rate
from engine.core.settings import VoiceSettings
from engine.models._calibration import population_threshold
from engine.models.voice import VoiceVerifier
from engine.voices.audio import load_recording
from engine.voices.embedding import speaker_embedding
from engine.voices.features import frame_config, stft_magnitude

DATASET = Path(__file__).resolve().parent.parent.parent / "shared/datasets/fsdd/recordings"
POOLS = {"dev": range(0, 5), "test": range(5, 10), "all": range(10)}
CONFIG = frame_config(VoiceSettings().sample_rate)
Clip = tuple[str, int, int]
"""(speaker, digit, take)"""
Design = Callable[[list[Clip], list[Clip], list[str]], np.ndarray]
"""(enrolment clips, probe clips, members) -> scores (n_probes, n_members), higher = same."""


def load_clips(dataset: Path) -> dict[Clip, np.ndarray]:
    settings = VoiceSettings(min_speech_s=0.1)
    clips = {}
    for path in sorted(dataset.glob("*.wav")):
        digit, speaker, take = path.stem.split("_")
        clips[(speaker, int(digit), int(take))] = load_recording(path, settings).samples
    return clips


SAMPLES: dict[Clip, np.ndarray] = {}
"""Every clip, cleaned once (filled by main)."""


@functools.cache
def _frames(clip: Clip) -> FrameFeatures:
    return frame_features(SAMPLES[clip], CONFIG)


@functools.cache
def _vector(clip: Clip) -> np.ndarray:
    """The product's clip vector: the speaker embedding."""
    return speaker_embedding(SAMPLES[clip], CONFIG.sr)


@functools.cache
def _statistics(clip: Clip) -> np.ndarray:
    """The clip statistics of benchmarks.clip_statistics (the alternatives' features)."""
    return summarise(_frames(clip))


def _sequence(clip: Clip) -> np.ndarray:
    return _frames(clip).mfcc.T


# ---- the product's model


def _verifier(clips: list[Clip], **params: Any) -> VoiceVerifier:
    return VoiceVerifier(**params).fit(
        np.array([_vector(c) for c in clips]),
        [c[0] for c in clips],
        [str(c[1]) for c in clips],
        [_sequence(c) for c in clips],
        [f"{c[0]}/{c[1]}_{c[2]}" for c in clips],
    )


def _product(part: str, **params: Any) -> Design:
    def design(enrol: list[Clip], probes: list[Clip], members: list[str]) -> np.ndarray:
        scores = _verifier(enrol, **params).score_claims(
            np.array([_vector(c) for c in probes]), [_sequence(c) for c in probes]
        )
        return {"combined": scores.combined, "speaker": scores.speaker, "dtw": scores.phrase}[part]

    return design


# ---- alternatives to the speaker evidence


def _logistic(features: Callable[[Clip], np.ndarray]) -> Design:
    def design(enrol: list[Clip], probes: list[Clip], members: list[str]) -> np.ndarray:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
        model.fit(np.array([features(c) for c in enrol]), [c[0] for c in enrol])
        return model.decision_function(np.array([features(c) for c in probes]))

    return design


def _mfcc_statistics(clip: Clip) -> np.ndarray:
    mfcc = _frames(clip).mfcc
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)])


@functools.cache
def _with_spectrum(clip: Clip) -> np.ndarray:
    magnitude = stft_magnitude(
        SAMPLES[clip],
        n_fft=CONFIG.n_fft,
        hop_length=CONFIG.hop_length,
        win_length=CONFIG.win_length,
    )
    # FSDD is 8 kHz audio: above 4 kHz (bin n_fft / 4) the resampled clip holds nothing.
    level = 10 * np.log10(np.square(magnitude[: CONFIG.n_fft // 4 + 1]) + 1e-10)
    loudest = level.max(axis=0)
    level = level[:, loudest >= loudest.max() - 30]
    return np.concatenate([_statistics(clip), level.mean(axis=1), level.std(axis=1)])


def _frame_rows(clip: Clip, context: int = 0) -> np.ndarray:
    frames = _frames(clip)
    rows = np.vstack([frames.mfcc[1:], frames.delta[1:]]).T
    if not context:
        return rows
    padded = np.pad(rows, ((context, context), (0, 0)), mode="edge")
    return np.hstack([padded[i : i + len(rows)] for i in range(2 * context + 1)])


def _gmm_ubm(enrol: list[Clip], probes: list[Clip], members: list[str]) -> np.ndarray:
    from scipy.special import logsumexp
    from sklearn.mixture import GaussianMixture

    frames = {c: _frame_rows(c) for c in enrol}
    pooled = np.vstack(list(frames.values()))
    mean, scale = pooled.mean(axis=0), pooled.std(axis=0)
    ubm = GaussianMixture(16, covariance_type="diag", reg_covar=1e-3, random_state=0)
    ubm.fit((pooled - mean) / scale)

    def log_likelihood(rows: np.ndarray, means: np.ndarray) -> np.ndarray:
        precision = 1.0 / ubm.covariances_
        per_component = -0.5 * (
            np.log(2 * np.pi * ubm.covariances_).sum(axis=1)
            + rows**2 @ precision.T
            - 2 * rows @ (means * precision).T
            + (means**2 * precision).sum(axis=1)
        )
        return logsumexp(per_component + np.log(ubm.weights_), axis=1)

    adapted = []
    for member in members:
        rows = (np.vstack([frames[c] for c in enrol if c[0] == member]) - mean) / scale
        posteriors = ubm.predict_proba(rows)
        counts = posteriors.sum(axis=0)
        expected = posteriors.T @ rows / np.maximum(counts, 1e-10)[:, None]
        alpha = (counts / (counts + 4.0))[:, None]  # MAP relevance factor 4
        adapted.append(alpha * expected + (1 - alpha) * ubm.means_)
    scores = np.empty((len(probes), len(members)))
    for row, clip in enumerate(probes):
        frames_z = (_frame_rows(clip) - mean) / scale
        background = log_likelihood(frames_z, ubm.means_)
        scores[row] = [np.mean(log_likelihood(frames_z, m) - background) for m in adapted]
    return scores


def _frame_mlp(enrol: list[Clip], probes: list[Clip], members: list[str]) -> np.ndarray:
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = [_frame_rows(c, context=2) for c in enrol]
    labels = np.concatenate([[c[0]] * len(r) for c, r in zip(enrol, rows, strict=True)])
    model = make_pipeline(
        StandardScaler(), MLPClassifier((128,), alpha=1e-2, max_iter=200, random_state=0)
    ).fit(np.vstack(rows), labels)
    return np.array(
        [model.predict_log_proba(_frame_rows(c, context=2)).mean(axis=0) for c in probes]
    )


DESIGNS: dict[str, Design] = {
    "product": _product("combined"),
    "product-speaker-only": _product("speaker"),
    "product-dtw-only": _product("dtw"),
    "logistic-mfcc-stats": _logistic(_mfcc_statistics),
    "logistic-stats-spectrum": _logistic(_with_spectrum),
    "gmm-ubm": _gmm_ubm,
    "frame-mlp": _frame_mlp,
}


# ---- protocol


def splits(pool: range, seed: int = 0) -> list[tuple[list[str], list[str], list[int], int]]:
    """(members, strangers, digits, wrong digit) of the 15 splits: every pair of speakers plays
    strangers; members enrol the two digits, and the third digit drawn is nobody's phrase."""
    speakers = sorted({c[0] for c in SAMPLES})
    result = []
    for index, strangers in enumerate(itertools.combinations(speakers, 2)):
        drawn = np.random.default_rng([seed, index]).permutation(np.array(pool))[:3]
        members = [s for s in speakers if s not in strangers]
        result.append((members, list(strangers), sorted(int(d) for d in drawn[:2]), int(drawn[2])))
    return result


def split_eers(
    design: Design, members: list[str], strangers: list[str], digits: list[int], wrong: int
) -> tuple[float, float]:
    enrol = [(s, d, t) for s in members for d in digits for t in range(5)]
    probes = [(s, d, t) for s in members + strangers for d in digits for t in range(5, 50)]
    scores = design(enrol, probes, members)
    speaker = np.array([c[0] for c in probes])
    genuine, against_members, against_strangers = [], [], []
    for column, member in enumerate(members):
        genuine.append(scores[speaker == member, column])
        against_members.append(scores[np.isin(speaker, members) & (speaker != member), column])
        against_strangers.append(scores[np.isin(speaker, strangers), column])
    mated = np.concatenate(genuine)
    return (
        equal_error_rate(mated, np.concatenate(against_members))[0],
        equal_error_rate(mated, np.concatenate(against_strangers))[0],
    )


@dataclasses.dataclass
class Decisions:
    """The product's decisions pooled over splits: counts per campaign, and each genuine and
    stranger attempt's margin over the threshold (-inf when the phrase check refused it)."""

    counts: Counter[str] = dataclasses.field(default_factory=Counter)
    genuine_by_speaker: Counter[str] = dataclasses.field(default_factory=Counter)
    refused_by_speaker: Counter[str] = dataclasses.field(default_factory=Counter)
    margins: dict[str, list[np.ndarray]] = dataclasses.field(
        default_factory=lambda: {"genuine": [], "stranger": []}
    )
    impostor_scores: list[np.ndarray] = dataclasses.field(default_factory=list)
    """Combined scores of other members' and strangers' attempts, -inf when the phrase check
    refused them (the population tail's data)."""

    def __iadd__(self, other: Decisions) -> Decisions:
        self.counts += other.counts
        self.genuine_by_speaker += other.genuine_by_speaker
        self.refused_by_speaker += other.refused_by_speaker
        for campaign, arrays in other.margins.items():
            self.margins[campaign] += arrays
        self.impostor_scores += other.impostor_scores
        return self


def calibrated_decisions(
    params: dict[str, Any], members: list[str], strangers: list[str], digits: list[int], wrong: int
) -> Decisions:
    """The product's decisions at the thresholds it calibrates itself (no oracle): attempts and
    acceptances of members' later takes (genuine, also per speaker), other members' and
    strangers' later takes claiming each member, and each member's own takes of the ``wrong``
    digit (nobody's phrase)."""
    enrol = [(s, d, t) for s in members for d in digits for t in range(5)]
    probes = [(s, d, t) for s in members + strangers for d in digits for t in range(5, 50)]
    probes += [(s, wrong, t) for s in members for t in range(50)]
    model = _verifier(enrol, **params)
    scores = model.score_claims(
        np.array([_vector(c) for c in probes]), [_sequence(c) for c in probes]
    )
    speaker = np.array([c[0] for c in probes])
    said_wrong = np.array([c[1] == wrong for c in probes])
    decisions = Decisions()
    counts = decisions.counts
    for column, member in enumerate(model.members_):
        campaigns = {
            "genuine": (speaker == member) & ~said_wrong,
            "member": np.isin(speaker, members) & (speaker != member) & ~said_wrong,
            "stranger": np.isin(speaker, strangers),
            "wrong phrase": (speaker == member) & said_wrong,
        }
        for campaign, rows in campaigns.items():
            counts[campaign] += int(rows.sum())
            counts[f"{campaign} accepted"] += int(scores.accepted[rows, column].sum())
            counts[f"{campaign} phrase ok"] += int(scores.phrase_ok[rows, column].sum())
        genuine = campaigns["genuine"]
        decisions.genuine_by_speaker[member] += int(genuine.sum())
        decisions.refused_by_speaker[member] += int(np.sum(~scores.accepted[genuine, column]))
        margin = np.where(
            scores.phrase_ok[:, column], scores.combined[:, column] - model.threshold_, -np.inf
        )
        for campaign in decisions.margins:
            decisions.margins[campaign].append(margin[campaigns[campaign]])
        impostor = campaigns["member"] | campaigns["stranger"]
        decisions.impostor_scores.append(
            np.where(scores.phrase_ok[impostor, column], scores.combined[impostor, column], -np.inf)
        )
    return decisions


TAIL_P0 = 0.03
"""The population tail starts at this share of the impostor attempts (most of the others are
refused by the phrase check)."""


def impostor_tail(scores: np.ndarray) -> tuple[float, float, float]:
    """(p0, t0, beta) of ``engine.models._calibration.VOICE_IMPOSTOR_TAIL`` from the pooled
    impostor attempts' scores, highest first: t0 the score reached by the top ``TAIL_P0`` of
    them, beta the mean excess of those over t0 (the exponential tail's maximum-likelihood
    scale)."""
    top = int(TAIL_P0 * len(scores))
    t0 = float(scores[top])
    return top / len(scores), t0, float(np.mean(scores[:top] - t0))


def report_tail(decisions: Decisions) -> str:
    """The fitted tail, and its thresholds beside the empirical points at a few targets."""
    scores = np.sort(np.concatenate(decisions.impostor_scores))[::-1]
    tail = impostor_tail(scores)
    lines = [
        f"impostor tail (p0, t0, beta) = ({tail[0]:.3f}, {tail[1]:.4f}, {tail[2]:.4f}), "
        f"{len(scores)} attempts"
    ]
    for target in (0.01, 0.005, 0.002):
        lines.append(
            f"  target {target:.1%}: tail threshold {population_threshold(target, tail):.3f}, "
            f"empirical {scores[int(target * len(scores))]:.3f}"
        )
    return "\n".join(lines)


def fnmr_at_stranger_fmr(decisions: Decisions, fmr: float) -> float:
    """FNMR once every split's threshold is shifted by the same margin so that the pooled
    stranger FMR is ``fmr``: compares designs at equal FMR, whatever their calibration."""
    genuine = np.concatenate(decisions.margins["genuine"])
    strangers = np.sort(np.concatenate(decisions.margins["stranger"]))[::-1]
    shift = strangers[int(fmr * len(strangers))]
    return float(np.mean(genuine <= shift))


def report_calibrated(name: str, decisions: Decisions) -> str:
    """One design's pooled decisions: FNMR (and the phrase check's share, and per speaker), FMR
    against members and strangers, wrong-phrase acceptance (overall and by the phrase check
    alone), and the FNMR at stranger FMRs of 0.5% and 1% (thresholds shifted alike)."""
    counts = decisions.counts
    fnmr = rate(counts["genuine"] - counts["genuine accepted"], counts["genuine"])
    phrase_refused = counts["genuine"] - counts["genuine phrase ok"]
    per_speaker = ", ".join(
        f"{speaker} {decisions.refused_by_speaker[speaker] / attempts:.1%}"
        for speaker, attempts in sorted(decisions.genuine_by_speaker.items())
    )
    figures = [
        f"FNMR {format_rate(fnmr)}, phrase check refused {phrase_refused}",
        f"FNMR per speaker: {per_speaker}",
        f"FMR members {format_rate(rate(counts['member accepted'], counts['member']))}",
        f"FMR strangers {format_rate(rate(counts['stranger accepted'], counts['stranger']))}",
        "wrong phrase accepted "
        + format_rate(rate(counts["wrong phrase accepted"], counts["wrong phrase"]))
        + f", passed the phrase check {counts['wrong phrase phrase ok']}",
        "FNMR at stranger FMR 0.5% / 1%: "
        + " / ".join(f"{fnmr_at_stranger_fmr(decisions, f):.1%}" for f in (0.005, 0.01)),
    ]
    return f"{name}\n  " + "\n  ".join(figures)


def _parameter(text: str) -> tuple[str, Any]:
    key, _, value = text.partition("=")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, {"None": None, "True": True, "False": False}.get(value, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--digits", choices=sorted(POOLS), default="dev")
    parser.add_argument("--designs", nargs="*", choices=sorted(DESIGNS), default=list(DESIGNS))
    parser.add_argument(
        "--dtw-weights",
        type=float,
        nargs="*",
        default=[],
        help="also the product's model with these DTW weights instead of its default",
    )
    parser.add_argument(
        "--calibrated",
        nargs="*",
        metavar="KEY=VALUE,...",
        help="report the product's decisions at its own thresholds instead of EERs: its "
        "defaults, then each given variant (VoiceVerifier parameters)",
    )
    parser.add_argument(
        "--impostor-tail",
        action="store_true",
        help="fit the population tail of the product's combined score (VOICE_IMPOSTOR_TAIL) on "
        "the impostor attempts at its defaults",
    )
    parser.add_argument("--splits", type=int, default=15, help="the first N of the 15 splits")
    parser.add_argument("--dataset", type=Path, default=DATASET)
    arguments = parser.parse_args()
    SAMPLES.update(load_clips(arguments.dataset))
    load = os.getloadavg()[0]
    chosen = splits(POOLS[arguments.digits])[: arguments.splits]
    print(f"# benchmarks.voice_designs, digits {arguments.digits}, {len(chosen)} splits")
    print(
        f"# {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}, {platform.machine()}, "
        f"{os.cpu_count()} cores, load average {load:.1f}"
    )
    if arguments.impostor_tail:
        decisions = Decisions()
        for split in chosen:
            decisions += calibrated_decisions({}, *split)
        print(report_tail(decisions))
        return
    if arguments.calibrated is not None:
        for variant in ["", *arguments.calibrated]:
            params = dict(_parameter(p) for p in variant.split(",") if p)
            decisions = Decisions()
            for split in chosen:
                decisions += calibrated_decisions(params, *split)
            print(report_calibrated(variant or "product defaults", decisions), flush=True)
        return
    print(f"{'design':<26} EER vs members  EER vs strangers  (mean over splits; max)")
    designs = {name: DESIGNS[name] for name in arguments.designs}
    designs |= {
        f"product-dtw-weight-{w:g}": _product("combined", phrase_weight=w)
        for w in arguments.dtw_weights
    }
    for name, design in designs.items():
        figures = np.array([split_eers(design, *split) for split in chosen])
        mean, worst = figures.mean(axis=0), figures.max(axis=0)
        print(
            f"{name:<26} {mean[0]:7.2%} ({worst[0]:6.2%})  {mean[1]:7.2%} ({worst[1]:6.2%})",
            flush=True,
        )


if __name__ == "__main__":
    main()

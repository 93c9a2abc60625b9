"""Is a recording a copy of an enrolment recording: re-encoded, noised, resampled, sped up or
slowed down?

A new take of the same word by the same speaker shares the enrolment take's formants and rough
timing, but not its exact pitch contour, so its harmonics fall elsewhere; a copy keeps them,
only moved: a playback-rate change scales time and frequency together, a tempo change scales
time alone, a pitch shift frequency alone. So the fingerprint is a log-frequency spectrogram
fine enough to resolve harmonics (on a log-frequency axis a frequency scale is a shift), and the
similarity is the best correlation over time scales, time shifts and frequency shifts:

1. coarse: the probe's spectrogram summed into wide bands is stretched in time by each factor
   of a grid (``_MAX_SCALE`` either way) and correlated with the enrolment take's at every time
   shift at once (FFT cross-correlation and running sums);
2. fine: around the best (time scale, shift) pair, finer time scales and fractional shifts,
   the full-resolution spectrograms are correlated at every frequency shift at once (FFT).

Each band's mean over the aligned frames is removed before correlating, so a gain change (a
constant in dB) and the speaker's average timbre cancel out.

A playback-rate change is only nearly a time scale and a frequency shift of the spectrogram: the
analysis window, fixed in seconds, covers more or less of the played clip, and frames moving in
pitch blur when read between frames. So ``recording_copy``, given the probe's samples, plays the
probe back at the rate its closest alignment's frequency shift shows (sub-bin, by a parabola
through the correlations around the best shift) and searches that take once more, keeping the
higher similarity: a copy played faster or slower comes back to its take's own spectrogram, a
new take has no rate to undo.

An attempt compares one probe with several enrolment takes: what does not depend on the probe
is prepared once per take (``enrolled_take``, kept by the replay guard), what does not depend
on the take (the probe stretched by every time scale, its running sums and FFT) once per
attempt, and the products are summed over bands or frames before the inverse FFT.

The bound on the similarity and the figures behind it: docs/BENCHMARKS.md, "Replay defence".
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np

FORMAT = b"lfs1"
"""Prefix of a stored fingerprint. An older mmauth stored bare float16 log-mel frames with no
prefix; their values are at most 0 dB, so their first bytes never read as this prefix."""
BINS_PER_OCTAVE = 64
_LOWEST_HZ = 100.0
_HIGHEST_HZ = 3800.0
"""Below 4 kHz, so a copy that went through 8 kHz (telephone band, lossy codecs) keeps it all."""
_HOP_S = 0.010
_WINDOW_S = 0.064
"""Long enough to resolve the harmonics of a low voice (spacing down to about 80 Hz)."""
_FLOOR_DB = 40.0
"""The fingerprint keeps this many decibels below the clip's peak: background noise lives
further down."""
_AMIN = 1e-10
N_BINS = int(np.floor(BINS_PER_OCTAVE * np.log2(_HIGHEST_HZ / _LOWEST_HZ))) + 1
_MIN_OVERLAP = 0.8
"""Alignments must overlap by at least this fraction of the shorter clip."""
_MAX_SCALE = 1.07
"""Time and frequency scales searched: 1 / _MAX_SCALE to _MAX_SCALE."""
_COARSE_SCALE_STEP = 0.01
_COARSE_BAND = 12
"""Fine bins per band of the coarse search (about a fifth of an octave)."""
_MAX_BIN_SHIFT = int(np.ceil(BINS_PER_OCTAVE * np.log2(_MAX_SCALE)))
_FINE_SCALE_STEPS = (-0.005, 0.0, 0.005)
_FINE_SHIFT_STEPS = (-0.5, 0.0, 0.5)
"""Frames added to the coarse search's whole-frame shift."""
REFINED_TAKES = 2
"""Enrolment takes, best first by the coarse search, that get the fine search."""
_MIN_RATE_SHIFT = 0.5
"""Frequency shift (bins) under which ``recording_copy`` sees no playback-rate change to undo."""


def log_frequency_spectrogram(y: np.ndarray, sr: int) -> np.ndarray:
    """Power spectrogram on a log-frequency axis (``BINS_PER_OCTAVE`` bins per octave from
    100 Hz to 3.8 kHz), in dB below the clip's peak floored at -40 dB, frames x bins, float32."""
    from engine.voices.features import stft_magnitude

    hop = max(1, int(round(_HOP_S * sr)))
    n_fft = int(2 ** np.ceil(np.log2(_WINDOW_S * sr)))
    magnitude = stft_magnitude(
        np.asarray(y, dtype=np.float32), n_fft=n_fft, hop_length=hop, win_length=n_fft
    )
    power = _log_frequency_basis(sr, n_fft) @ np.square(magnitude.astype(np.float64))
    decibels = 10.0 * np.log10(np.maximum(power, _AMIN))
    decibels -= decibels.max()
    return np.maximum(decibels, -_FLOOR_DB).T.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _log_frequency_basis(sr: int, n_fft: int) -> np.ndarray:
    """Triangular filters centred on the log-spaced frequencies, each as wide as the spacing of
    its neighbours (or of the FFT bins, where those are wider), normalised to sum to one: a
    filter that sampled the spectrum at one point would miss harmonics between its points, and
    a copy's shifted harmonics would then not line up."""
    centres = _LOWEST_HZ * 2.0 ** (np.arange(N_BINS) / BINS_PER_OCTAVE)
    resolution = sr / n_fft
    widths = np.maximum(centres * (2.0 ** (1.0 / BINS_PER_OCTAVE) - 1.0), resolution)
    frequencies = np.arange(n_fft // 2 + 1) * resolution
    basis = np.clip(1.0 - np.abs(frequencies - centres[:, None]) / widths[:, None], 0.0, None)
    basis /= basis.sum(axis=1, keepdims=True)
    basis.setflags(write=False)
    return basis


def encode_spectrogram(spectrogram: np.ndarray) -> bytes:
    return FORMAT + np.asarray(spectrogram, dtype=np.float16).tobytes()


def decode_spectrogram(fingerprint: bytes) -> np.ndarray | None:
    """The stored spectrogram (frames x bins, float64), or None for an older mmauth's
    fingerprint (recomputed by the guard's sync)."""
    if not fingerprint.startswith(FORMAT):
        return None
    values = np.frombuffer(fingerprint[len(FORMAT) :], dtype=np.float16)
    return values.reshape(-1, N_BINS).astype(np.float64)


@dataclasses.dataclass(frozen=True)
class EnrolledTake:
    """An enrolment take's spectrogram and what the search needs of it whatever the probe, built
    once (``enrolled_take``) and kept by the replay guard between attempts."""

    spectrogram: np.ndarray
    """Frames x bins, kept as given: the guard gives float16, the fingerprint's own precision,
    a quarter of float64's memory and exact in it."""
    bands: np.ndarray
    """The coarse search's wide bands (frames x bands, float64)."""


def enrolled_take(spectrogram: np.ndarray) -> EnrolledTake:
    """``spectrogram`` prepared for ``closest_copy``."""
    spectrogram = np.asarray(spectrogram)
    if spectrogram.ndim != 2 or spectrogram.shape[1] <= 2 * _MAX_BIN_SHIFT:
        return EnrolledTake(spectrogram, np.zeros((0, 0)))
    return EnrolledTake(spectrogram, _bands(spectrogram.astype(np.float64)))


def copy_similarity(probe: np.ndarray, enrolled: np.ndarray) -> float:
    """Best correlation (1.0 = identical) of two log-frequency spectrograms over time scales,
    time shifts and frequency shifts within ``_MAX_SCALE`` (module docstring); 0.0 when they
    cannot be compared (empty, or different frequency axes)."""
    return closest_copy(probe, [enrolled])[0]


def closest_copy(
    probe: np.ndarray, takes: Sequence[EnrolledTake | np.ndarray]
) -> tuple[float, int]:
    """The highest ``copy_similarity`` of ``probe`` to any of ``takes`` (spectrograms, or
    prepared by ``enrolled_take``), and that take's index (0.0 and -1 when none can be
    compared). Only the ``REFINED_TAKES`` takes the coarse search ranks first get the fine
    search, which costs the most: a copy's own take leads the coarse ranking, and the other
    takes' scores only matter when they are high."""
    match = _closest(np.asarray(probe, dtype=np.float64), _prepared(takes))
    return match.similarity, match.index


def recording_copy(
    samples: np.ndarray, sr: int, takes: Sequence[EnrolledTake | np.ndarray]
) -> tuple[float, int]:
    """``closest_copy`` of a recording's spectrogram, searched once more against the closest
    take after playing the recording back at the rate its best alignment's frequency shift
    shows (module docstring): the higher similarity and that take's index. The probe's
    spectrogram is read at the fingerprint's float16 precision, as the enrolment takes are."""
    prepared = _prepared(takes)
    match = _closest(_fingerprint_precision(samples, sr), prepared)
    if match.index < 0 or abs(match.bin_shift) < _MIN_RATE_SHIFT:
        return match.similarity, match.index
    import soxr

    rate = 2.0 ** (match.bin_shift / BINS_PER_OCTAVE)
    # Read at sr, played at sr * rate: every frequency divided by the rate the probe shows.
    played = soxr.resample(np.asarray(samples, dtype=np.float64), sr, sr * rate, quality="HQ")
    again = _closest(_fingerprint_precision(played, sr), [prepared[match.index]])
    return max(match.similarity, again.similarity), match.index


def _fingerprint_precision(samples: np.ndarray, sr: int) -> np.ndarray:
    return log_frequency_spectrogram(samples, sr).astype(np.float16).astype(np.float64)


def _prepared(takes: Sequence[EnrolledTake | np.ndarray]) -> list[EnrolledTake]:
    return [t if isinstance(t, EnrolledTake) else enrolled_take(t) for t in takes]


@dataclasses.dataclass(frozen=True)
class _Match:
    similarity: float
    index: int
    """The closest take's index, -1 when none can be compared."""
    bin_shift: float
    """How many bins (fractional) the probe sits above that take at the best alignment."""


def _closest(probe: np.ndarray, prepared: Sequence[EnrolledTake]) -> _Match:
    usable = [index for index, take in enumerate(prepared) if _comparable(probe, take.spectrogram)]
    if not usable:
        return _Match(0.0, -1, 0.0)
    stretched = _StretchedProbe.of(probe, max(len(prepared[i].bands) for i in usable))
    coarse = [(stretched.alignment(prepared[index]), index) for index in usable]
    coarse.sort(key=lambda entry: entry[0][0], reverse=True)
    best = _Match(0.0, -1, 0.0)
    for (_, scale, shift), index in coarse[:REFINED_TAKES]:
        take = prepared[index].spectrogram.astype(np.float64)
        similarity, bin_shift = _refined_similarity(probe, take, scale, shift)
        if similarity > best.similarity or best.index < 0:
            best = _Match(similarity, index, bin_shift)
    return best


def _comparable(probe: np.ndarray, take: np.ndarray) -> bool:
    return (
        probe.ndim == 2
        and take.ndim == 2
        and probe.shape[1] == take.shape[1] > 2 * _MAX_BIN_SHIFT
        and min(len(probe), len(take)) >= 2
    )


def _refined_similarity(
    probe: np.ndarray, take: np.ndarray, scale: float, shift: int
) -> tuple[float, float]:
    """The fine search around a coarse alignment: finer time scales, fractional frame shifts,
    every whole-bin frequency shift; the best correlation and its frequency shift."""
    centre = take[:, _MAX_BIN_SHIFT : take.shape[1] - _MAX_BIN_SHIFT]
    centre_spectrum = np.fft.rfft(centre, take.shape[1], axis=1)
    best = (0.0, 0.0)
    for scale_step in _FINE_SCALE_STEPS:
        for shift_step in _FINE_SHIFT_STEPS:
            warped, inside = _warp(probe, scale + scale_step, shift + shift_step, len(take))
            shorter = min(len(take), len(probe) * (scale + scale_step))
            if len(warped) >= max(2, _MIN_OVERLAP * shorter):
                found = _best_over_frequency_shifts(centre[inside], centre_spectrum[inside], warped)
                best = max(best, found, key=lambda entry: entry[0])
    return best


def _bands(spectrogram: np.ndarray) -> np.ndarray:
    usable = spectrogram.shape[1] // _COARSE_BAND * _COARSE_BAND
    return spectrogram[:, :usable].reshape(len(spectrogram), -1, _COARSE_BAND).mean(axis=2)


def _running(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Running sums along ``axis`` with a leading zero: the sum over [first, last) is
    ``result[last] - result[first]`` along it."""
    zeros = np.zeros_like(np.take(values, [0], axis=axis))
    return np.concatenate([zeros, np.cumsum(values, axis=axis)], axis=axis)


def _warp(
    spectrogram: np.ndarray, scale: float, shift: float, length: int
) -> tuple[np.ndarray, slice]:
    """Those frames ``i`` of ``length`` that fall inside ``spectrogram`` when read at
    ``(i - shift) / scale`` (consecutive: ``inside``), interpolated: a probe ``scale`` times
    longer than the enrolment take, starting ``shift`` frames later, lands on the take's
    frames."""
    positions = (np.arange(length) - shift) / scale
    valid = np.flatnonzero((positions >= 0) & (positions <= len(spectrogram) - 1))
    inside = slice(int(valid[0]), int(valid[-1]) + 1) if len(valid) else slice(0, 0)
    return _interpolate(spectrogram, positions[inside]), inside


def _interpolate(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``values`` (frames first) read at fractional frame ``positions`` of any shape, linearly;
    positions outside its frames read its first or last frame."""
    frames = len(values)
    positions = np.clip(positions, 0, frames - 1)
    lower = np.minimum(np.floor(positions).astype(int), max(frames - 2, 0))
    upper = np.minimum(lower + 1, frames - 1)
    weight = (positions - lower)[..., None]
    return (1.0 - weight) * values[lower] + weight * values[upper]


@dataclasses.dataclass(frozen=True)
class _StretchedProbe:
    """The probe's wide bands stretched by every time scale of the coarse grid (symmetric
    around 1, so that an unaltered copy is aligned exactly), with their running sums and FFT:
    computed once per attempt, whatever the number of enrolment takes."""

    scales: np.ndarray
    lengths: np.ndarray
    """Frames of each stretched probe; rows are zero beyond."""
    band_sums: np.ndarray
    """Running sums over frames per scale and band (scales x frames + 1 x bands)."""
    square_sums: np.ndarray
    """Running sums over frames of the squares summed over bands (scales x frames + 1)."""
    spectrum: np.ndarray
    """FFT over frames (scales x size // 2 + 1 x bands), long enough for any take's length."""
    size: int

    @classmethod
    def of(cls, probe: np.ndarray, longest_take: int) -> _StretchedProbe:
        probe_bands = _bands(probe)
        steps = int(np.ceil((_MAX_SCALE - 1.0) / _COARSE_SCALE_STEP))
        scales = 1.0 + _COARSE_SCALE_STEP * np.arange(-steps, steps + 1)
        lengths = np.floor((len(probe) - 1) * scales).astype(int) + 1
        # Frame j of each stretched probe read at j / scale, every scale at once.
        stretched = _interpolate(probe_bands, np.arange(lengths.max())[None, :] / scales[:, None])
        stretched[np.arange(lengths.max())[None, :] >= lengths[:, None]] = 0.0
        size = _fft_size(int(lengths.max()), longest_take)
        return cls(
            scales,
            lengths,
            _running(stretched, axis=1),
            _running((stretched * stretched).sum(axis=2), axis=1),
            np.conj(np.fft.rfft(stretched, size, axis=1)),
            size,
        )

    def alignment(self, take: EnrolledTake) -> tuple[float, float, int]:
        """(correlation, time scale, frame shift) of the best alignment with ``take``'s wide
        bands at every time scale and every whole-frame shift that keeps ``_MIN_OVERLAP`` of
        the shorter overlapped (shift ``d``: stretched probe frame ``j`` on take frame
        ``j + d``): the products by one FFT cross-correlation, summed over bands before the
        inverse FFT, and the means by running sums."""
        frames = len(take.bands)
        longest = self.band_sums.shape[1] - 1
        needed = np.maximum(np.ceil(_MIN_OVERLAP * np.minimum(self.lengths, frames)), 1)
        # Overlap of at least `needed` frames: shifts from needed - length to frames - needed.
        shifts = np.arange(int((needed - self.lengths).min()), int((frames - needed).max()) + 1)
        spectrum = np.fft.rfft(take.bands, self.size, axis=0)
        products = np.fft.irfft(
            np.einsum("sfb,fb->sf", self.spectrum, spectrum), self.size, axis=1
        )[:, shifts]
        start = np.maximum(0, -shifts)[None, :]
        end = np.minimum(self.lengths[:, None], frames - shifts[None, :])
        overlap = end - start
        rows = np.arange(len(self.scales))[:, None]
        first = np.clip(start, 0, longest)
        last = np.clip(end, first, longest)
        sum_probe = self.band_sums[rows, last] - self.band_sums[rows, first]
        squares_probe = self.square_sums[rows, last] - self.square_sums[rows, first]
        first = np.clip(start + shifts, 0, frames)
        last = np.clip(end + shifts, first, frames)
        # Cheap next to the rest, and not worth the memory of keeping them with the take.
        band_sums = _running(take.bands)
        square_sums = _running((take.bands * take.bands).sum(axis=1))
        sum_take = band_sums[last] - band_sums[first]
        squares_take = square_sums[last] - square_sums[first]
        length = np.maximum(overlap, 1)
        covariance = products - np.einsum("sdb,sdb->sd", sum_probe, sum_take) / length
        variance_probe = squares_probe - np.einsum("sdb,sdb->sd", sum_probe, sum_probe) / length
        variance_take = squares_take - np.einsum("sdb,sdb->sd", sum_take, sum_take) / length
        denominator = np.sqrt(
            np.clip(variance_probe, 0.0, None) * np.clip(variance_take, 0.0, None)
        )
        usable = (overlap >= needed[:, None]) & (denominator > 0)
        correlations = np.where(usable, covariance / np.maximum(denominator, _AMIN), -np.inf)
        best = np.unravel_index(int(np.argmax(correlations)), correlations.shape)
        return float(correlations[best]), float(self.scales[best[0]]), int(shifts[best[1]])


def _best_over_frequency_shifts(
    centre: np.ndarray, centre_spectrum: np.ndarray, probe: np.ndarray
) -> tuple[float, float]:
    """Best correlation of the enrolled spectrogram's central bins (``centre``, and its FFT over
    bins as long as the probe's bins) with the warped probe's bins shifted by every whole bin
    up to the margin, over the aligned frames, all shifts at once: each frame's FFT
    cross-correlation, summed over frames before the one inverse FFT. The FFT is as long as the
    bin axis: the cross-correlation wraps round only at lags beyond the margin, never read.
    Also returns the shift of the probe above the take (in bins, refined between bins by a
    parabola through the correlations at the best shift and its neighbours)."""
    means = centre.mean(axis=0)
    enrolled = centre - means
    width = enrolled.shape[1]
    shifts = probe.shape[1] - width + 1
    # The enrolled bins have zero mean over the frames once their means are removed (the FFT
    # of the means is the mean of the FFTs), so the probe's means drop out here.
    enrolled_spectrum = centre_spectrum - centre_spectrum.mean(axis=0)
    cross = np.einsum("if,if->f", np.conj(enrolled_spectrum), np.fft.rfft(probe, axis=1))
    covariance = np.fft.irfft(cross, probe.shape[1])[:shifts]
    probe_means = probe.mean(axis=0)
    spread = np.concatenate(
        [[0.0], np.cumsum((probe * probe).sum(axis=0) - len(probe) * probe_means**2)]
    )
    variance = np.clip(spread[width:] - spread[:-width], 0.0, None)
    denominator = np.sqrt((enrolled * enrolled).sum() * variance)
    usable = denominator > 0
    if not usable.any():
        return 0.0, 0.0
    correlations = np.where(usable, covariance / np.where(usable, denominator, 1.0), -np.inf)
    best = int(np.argmax(correlations))
    return float(max(0.0, correlations[best])), best + _peak_offset(correlations, best) - (
        (shifts - 1) // 2
    )


def _peak_offset(values: np.ndarray, peak: int) -> float:
    """Where between its neighbours the parabola through ``values[peak - 1 : peak + 2]`` peaks
    (-0.5 to 0.5), 0.0 at an edge."""
    if peak == 0 or peak == len(values) - 1 or not np.isfinite(values[peak - 1 : peak + 2]).all():
        return 0.0
    left, middle, right = values[peak - 1 : peak + 2]
    curvature = left - 2.0 * middle + right
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5)) if curvature < 0 else 0.0


def _fft_size(first: int, second: int) -> int:
    """A power of two at least ``first + second - 1``: no cross-correlation lag wraps round."""
    return 1 << int(first + second - 1).bit_length()

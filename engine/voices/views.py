"""Waveform and mel-spectrogram views of a clip: data for a terminal drawing and PNG export.

``clip_view`` returns plain arrays sized for a terminal (a min/max envelope per column and a
pooled dB matrix) that the TUI and the CLI draw themselves; ``save_clip_png`` writes the same
two panels with matplotlib (Agg, headless) for reports. By default the clip is shown as
recorded (mono, resampled, silence kept, with the detected speech marked), so a refused clip
can still be looked at; ``cleaned=True`` shows what the voice model receives.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.core.settings import Settings
from engine.voices.audio import load_recording, read_audio, speech_bounds, to_mono
from engine.voices.features import frame_config, mel_basis, stft_magnitude

if TYPE_CHECKING:
    from matplotlib.axes import Axes

VIEW_MELS = 64
"""Mel bands of the displayed spectrogram (more than the 40 the MFCC use: it is for the eye)."""
VIEW_TOP_DB = 80.0
"""Dynamic range shown: quieter than this below the loudest cell is drawn as the floor."""


@dataclasses.dataclass(frozen=True)
class ClipSignal:
    """The samples a view shows."""

    samples: np.ndarray
    """float32 mono samples."""
    sample_rate: int
    """Rate of ``samples``."""
    speech: tuple[float, float] | None
    """Start and end (s) of the detected speech; None when the clip is silent."""
    cleaned: bool
    """True when ``samples`` went through the whole cleaning (trimmed and normalised)."""


@dataclasses.dataclass(frozen=True)
class ClipView:
    """A clip reduced to what a terminal can draw."""

    duration_s: float
    """Length of the shown samples."""
    sample_rate: int
    """Rate of the shown samples."""
    envelope_min: np.ndarray
    """(width,) lowest sample in each column's time slice, in [-1, 1]."""
    envelope_max: np.ndarray
    """(width,) highest sample in each column's time slice."""
    spectrogram_db: np.ndarray
    """(height, width) mel power in dB relative to the loudest cell, row 0 = lowest band,
    floored at -VIEW_TOP_DB."""
    max_frequency_hz: float
    """Frequency of the top row."""
    speech: tuple[float, float] | None
    """Start and end (s) of the detected speech; None when silent."""
    cleaned: bool
    """True when the cleaned (model input) signal is shown."""


def clip_signal(path: str | Path, settings: Settings, *, cleaned: bool = False) -> ClipSignal:
    """The samples to show for ``path``: as recorded (default) or as the model receives them.

    As recorded, only unreadable files are refused; cleaned, every refusal of
    engine.voices.audio.load_recording applies.
    """
    sr = settings.voice.sample_rate
    if cleaned:
        recording = load_recording(path, settings.voice)
        return ClipSignal(recording.samples, sr, (0.0, recording.duration_s), cleaned=True)
    y = to_mono(read_audio(path, max_duration_s=settings.voice.max_duration_s), sr)
    bounds = speech_bounds(y, sr, top_db=settings.voice.trim_top_db)
    speech = (bounds[0] / sr, bounds[1] / sr) if bounds else None
    return ClipSignal(y, sr, speech, cleaned=False)


def waveform_envelope(y: np.ndarray, *, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of the samples falling in each of ``width`` equal time slices (a slice
    narrower than a sample shows its nearest sample)."""
    if width < 1 or len(y) == 0:
        raise ValueError("need at least one column and one sample")
    starts = _slice_starts(len(y), width)
    return np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)


def _slice_starts(size: int, parts: int) -> np.ndarray:
    # ufunc.reduceat reduces [start_i, start_i+1) and returns the single element at start_i
    # when the next start is not larger: exactly "nearest cell" for grids finer than the data.
    return np.minimum(np.linspace(0, size, parts + 1)[:-1].astype(int), size - 1)


def mel_spectrogram_db(y: np.ndarray, *, sr: int, n_mels: int = VIEW_MELS) -> np.ndarray:
    """(n_mels, T) mel power in dB below the loudest cell, floored at -VIEW_TOP_DB; the same
    25 ms / 10 ms framing as the features."""
    config = frame_config(sr)
    S = stft_magnitude(
        y, n_fft=config.n_fft, hop_length=config.hop_length, win_length=config.win_length
    )
    power = mel_basis(sr, config.n_fft, n_mels) @ np.square(S)
    db = 10.0 * np.log10(np.maximum(power, 1e-12))
    db -= db.max()
    return np.maximum(db, -VIEW_TOP_DB)


def pool_matrix(matrix: np.ndarray, *, rows: int, cols: int) -> np.ndarray:
    """Average ``matrix`` into a (rows, cols) grid (nearest cell where the grid is finer)."""
    pooled = matrix.astype(np.float64)
    for axis, parts in ((0, rows), (1, cols)):
        size = pooled.shape[axis]
        starts = _slice_starts(size, parts)
        counts = np.maximum(np.diff(np.append(starts, size)), 1)
        sums = np.add.reduceat(pooled, starts, axis=axis)
        pooled = sums / (counts[:, None] if axis == 0 else counts[None, :])
    return pooled


def clip_view(
    path: str | Path,
    settings: Settings,
    *,
    width: int = 80,
    height: int = 16,
    cleaned: bool = False,
) -> ClipView:
    """Waveform envelope and mel spectrogram of a clip, sized ``width`` x ``height`` cells."""
    signal = clip_signal(path, settings, cleaned=cleaned)
    lows, highs = waveform_envelope(signal.samples, width=width)
    spectrogram = mel_spectrogram_db(signal.samples, sr=signal.sample_rate)
    return ClipView(
        duration_s=len(signal.samples) / signal.sample_rate,
        sample_rate=signal.sample_rate,
        envelope_min=lows,
        envelope_max=highs,
        spectrogram_db=pool_matrix(spectrogram, rows=height, cols=width),
        max_frequency_hz=signal.sample_rate / 2.0,
        speech=signal.speech,
        cleaned=signal.cleaned,
    )


def save_clip_png(
    path: str | Path,
    settings: Settings,
    output: str | Path,
    *,
    cleaned: bool = False,
    title: str | None = None,
) -> Path:
    """Write a PNG with the waveform (speech shaded) over the mel spectrogram (dB); returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.core.fileio import atomic_write_bytes

    signal = clip_signal(path, settings, cleaned=cleaned)
    sr = signal.sample_rate
    duration = len(signal.samples) / sr
    spectrogram = mel_spectrogram_db(signal.samples, sr=sr)
    figure, (wave_axes, mel_axes) = plt.subplots(
        2, 1, figsize=(8, 4.5), sharex=True, gridspec_kw={"height_ratios": [1, 1.6]}
    )
    try:
        times = np.arange(len(signal.samples)) / sr
        wave_axes.plot(times, signal.samples, linewidth=0.5, color="#1f4e79")
        if signal.speech and not signal.cleaned:
            wave_axes.axvspan(*signal.speech, color="#f4b183", alpha=0.35, label="speech")
            wave_axes.legend(loc="upper right", fontsize=7)
        wave_axes.set_ylabel("amplitude")
        wave_axes.set_ylim(-1.0, 1.0)
        image = mel_axes.imshow(
            spectrogram,
            origin="lower",
            aspect="auto",
            extent=(0.0, duration, 0, spectrogram.shape[0]),
            cmap="magma",
            vmin=-VIEW_TOP_DB,
            vmax=0.0,
        )
        _label_mel_axis(mel_axes, sr, spectrogram.shape[0])
        mel_axes.set_xlabel("time (s)")
        figure.colorbar(image, ax=[wave_axes, mel_axes], label="dB", fraction=0.04)
        kind = "cleaned" if signal.cleaned else "as recorded"
        wave_axes.set_title(title or f"{Path(path).name} ({kind}, {duration:.2f} s, {sr} Hz)")
        output = Path(output)
        # Rendered in memory first: an error writing the file is then the writer's OutputError.
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110)
        atomic_write_bytes(output, buffer.getvalue())
    finally:
        plt.close(figure)
    return output


def _label_mel_axis(axes: Axes, sr: int, n_mels: int) -> None:
    import librosa

    centres = librosa.mel_frequencies(n_mels=n_mels + 2, fmax=sr / 2.0)[1:-1]
    ticks = np.linspace(0, n_mels - 1, 5).astype(int)
    axes.set_yticks(ticks + 0.5)
    axes.set_yticklabels([f"{centres[t] / 1000:.1f}k" for t in ticks])
    axes.set_ylabel("mel band (Hz)")

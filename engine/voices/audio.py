"""Loading and cleaning recordings: any supported file -> 16 kHz mono float32 speech, or a refusal.

Steps: read the header (format, rate, length: files over ``voice.max_duration_s`` are refused
before any sample is decoded), decode at most that many samples, refuse NaN/inf, mix to mono,
resample with soxr, remove DC, trim leading/trailing silence with an energy VAD, refuse silence,
too little speech and heavy clipping, then normalise loudness. Every refusal is an
``InputError`` naming the file and what is wrong (``AcquisitionError`` when the file is fine but
holds no usable speech: ISO/IEC 19795-1 failure to acquire).
"""

from __future__ import annotations

import dataclasses
import re
import struct
from pathlib import Path

import numpy as np

from engine.core.errors import AcquisitionError, InputError
from engine.core.settings import VoiceSettings

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 96_000
SILENCE_FLOOR_DBFS = -60.0
"""A recording whose loudest 25 ms frame is quieter than this holds no speech."""
TARGET_SPEECH_DBFS = -20.0
"""Loudness normalisation: RMS of the speech frames is brought to this level..."""
PEAK_LIMIT = 0.99
"""...unless that would push a sample past this peak, in which case the gain stops there."""
VAD_FRAME_S = 0.025
VAD_HOP_S = 0.010
EDGE_PAUSE_S = 0.4
"""A run of noise-bed frames this long at either end of a recording is a pause, not the word's
onset or fade: speech_bounds cuts it."""
NOISE_FLOOR_PERCENTILE = 10.0
"""The frame level (percentile) taken as a recording's noise floor."""
NOISE_MARGIN_DB = 10.0
"""Frames less than this above the noise floor belong to the noise bed."""
QUIET_BELOW_PEAK_DB = 20.0
"""...and only frames at least this far under the loudest one: a word's fade is never cut."""
SPEECH_DETECTOR = {
    "edge_pause_s": EDGE_PAUSE_S,
    "noise_floor_percentile": NOISE_FLOOR_PERCENTILE,
    "noise_margin_db": NOISE_MARGIN_DB,
    "quiet_below_peak_db": QUIET_BELOW_PEAK_DB,
}
"""The speech detector's constants, part of the feature cache's key: cached features of a
recording trimmed by another detector are extracted again."""
RAIL_LEVEL = 0.999
"""Full scale for clipping detection, for encodings finer than 16 bits (within 1.5 LSB for 8/16)."""
LOSSY_SUBTYPES = frozenset({"VORBIS", "OPUS", "MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III"})

_PHRASE_INDEX = re.compile(r"_\d+$")


@dataclasses.dataclass(frozen=True)
class DecodedAudio:
    """Samples as stored in the file, before any cleaning."""

    samples: np.ndarray
    """float32 array (frames, channels), full scale = 1.0."""
    sample_rate: int
    """The file's sample rate in Hz."""
    format: str
    """Container as libsndfile names it (WAV, FLAC, OGG, MP3, ...)."""
    subtype: str
    """Sample encoding (PCM_16, FLOAT, VORBIS, ...)."""

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclasses.dataclass(frozen=True)
class Recording:
    """A cleaned recording: mono, resampled, trimmed to its speech, loudness-normalised."""

    samples: np.ndarray
    """float32 mono samples at ``sample_rate``."""
    sample_rate: int
    """Sample rate of ``samples`` (settings.voice.sample_rate)."""
    source_sample_rate: int
    """The file's own sample rate."""
    channels: int
    """Channels in the file (mixed down to mono)."""
    source_duration_s: float
    """Length of the whole file, silence included."""
    speech_start_s: float
    """Where the kept speech starts in the file."""
    clipped_fraction: float
    """Fraction of the speech samples that sit on a clipped plateau."""

    @property
    def duration_s(self) -> float:
        """Length of the kept speech."""
        return len(self.samples) / self.sample_rate


def phrase_from_filename(path: str | Path) -> str:
    """The phrase a file records: its stem without a trailing ``_<n>`` take number."""
    return _PHRASE_INDEX.sub("", Path(path).stem)


def read_audio(path: str | Path, *, max_duration_s: float) -> DecodedAudio:
    """Decode a wav/flac/ogg/mp3 file, reading no more than ``max_duration_s`` of it."""
    import soundfile

    path = Path(path)
    shown = path.name
    if not path.is_file():
        raise InputError("no such file", path=shown)
    if path.stat().st_size == 0:
        raise InputError("the file is empty (0 bytes)", path=shown)
    try:
        handle = soundfile.SoundFile(path)
    except (RuntimeError, TypeError, ValueError) as error:
        raise InputError(
            f"not a readable audio file ({_libsndfile_reason(error)}); "
            "expected WAV, FLAC, OGG or MP3",
            path=shown,
        ) from error
    with handle:
        sample_rate, frames = handle.samplerate, handle.frames
        if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
            raise InputError(
                f"sample rate {sample_rate} Hz is outside the supported "
                f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz",
                path=shown,
            )
        _refuse_too_long(frames / sample_rate, max_duration_s, shown)
        limit = int(max_duration_s * sample_rate) + 1
        try:
            samples = handle.read(frames=limit, dtype="float32", always_2d=True)
        except (RuntimeError, ValueError) as error:
            raise InputError(
                f"the audio data is corrupt or truncated ({_libsndfile_reason(error)})",
                path=shown,
            ) from error
        decoded = DecodedAudio(samples, sample_rate, handle.format, handle.subtype)
    # The header can understate the length (streamed or damaged files): the bounded read decides.
    _refuse_too_long(decoded.duration_s, max_duration_s, shown)
    if len(samples) == 0:
        raise InputError("the file holds no audio samples", path=shown)
    declared_s = _declared_wav_duration(path, sample_rate, samples.shape[1], decoded.subtype)
    if declared_s is not None and declared_s > decoded.duration_s + 1.0 / sample_rate:
        raise InputError(
            f"the file is truncated: its header announces {declared_s:.2f} s of audio, "
            f"only {decoded.duration_s:.2f} s are there",
            path=shown,
        )
    if not np.isfinite(samples).all():
        raise InputError(
            "the recording holds NaN or infinite sample values (a damaged float file)", path=shown
        )
    return decoded


def to_mono(decoded: DecodedAudio, sample_rate: int) -> np.ndarray:
    """Mix to mono, resample to ``sample_rate`` (soxr, high quality) and remove the DC offset."""
    import soxr

    mono = decoded.samples.mean(axis=1, dtype=np.float32)
    if decoded.sample_rate != sample_rate:
        mono = soxr.resample(mono, decoded.sample_rate, sample_rate, quality="HQ")
    mono = mono - mono.mean(dtype=np.float64)
    return mono.astype(np.float32, copy=False)


def frame_levels_db(y: np.ndarray, sr: int) -> np.ndarray:
    """RMS level in dBFS of each 25 ms frame (10 ms hop) of ``y``; the VAD's input."""
    frame = max(1, round(VAD_FRAME_S * sr))
    hop = max(1, round(VAD_HOP_S * sr))
    if len(y) < frame:
        y = np.pad(y, (0, frame - len(y)))
    squares = np.concatenate(([0.0], np.cumsum(np.square(y, dtype=np.float64))))
    starts = np.arange(0, len(y) - frame + 1, hop)
    power = (squares[starts + frame] - squares[starts]) / frame
    return 10.0 * np.log10(np.maximum(power, 1e-20))


def speech_bounds(y: np.ndarray, sr: int, *, top_db: float) -> tuple[int, int] | None:
    """Sample range from the first to the last frame within ``top_db`` of the loudest frame,
    without a noise bed at either end.

    A recording made in a room, with a pause before or after the words, holds frames of
    steady noise that are within ``top_db`` of the words: without this, one of them anywhere
    stretches the "speech" to the whole clip, and the voice model learns and scores the room.
    So a run of at least EDGE_PAUSE_S at either end of frames near the noise floor (under
    NOISE_MARGIN_DB above the clip's NOISE_FLOOR_PERCENTILE level, and at least
    QUIET_BELOW_PEAK_DB under the loudest frame) is cut; shorter runs stay, as in a clip cut
    close to the word. On FSDD it cuts a trailing noise bed of 5 of 3,000 takes and leaves the
    rest as they were (docs/BENCHMARKS.md, "Recordings made in a room").

    None when even the loudest frame is under SILENCE_FLOOR_DBFS (no speech at all).
    """
    levels = frame_levels_db(y, sr)
    loudest = float(levels.max())
    if loudest < SILENCE_FLOOR_DBFS:
        return None
    active = np.flatnonzero(levels >= loudest - top_db)
    first, last = int(active[0]), int(active[-1])
    floor = float(np.percentile(levels, NOISE_FLOOR_PERCENTILE))
    bed = levels < min(
        loudest - QUIET_BELOW_PEAK_DB, max(loudest - top_db, floor + NOISE_MARGIN_DB)
    )
    hop = max(1, round(VAD_HOP_S * sr))
    pause = round(EDGE_PAUSE_S / VAD_HOP_S)
    lead = _run_length(bed[first : last + 1])
    if lead >= pause:
        first += lead
    trail = _run_length(bed[first : last + 1][::-1])
    if trail >= pause:
        last -= trail
    frame = max(1, round(VAD_FRAME_S * sr))
    return first * hop, min(len(y), last * hop + frame)


def _run_length(flags: np.ndarray) -> int:
    """How many leading entries of ``flags`` are true."""
    false = np.flatnonzero(~flags)
    return int(false[0]) if false.size else len(flags)


def clipped_samples(samples: np.ndarray, subtype: str) -> int:
    """Samples at the rail (full scale) in the worst channel: what a too-high recording gain does.

    For PCM and float files a sample must also equal a neighbour: clipping flattens the
    waveform, while a clean waveform that merely peaks at full scale (a sine, a normalised file)
    does not repeat its extreme value. Lossy codecs smear the plateau, so there the level alone
    counts.
    """
    bits = {"PCM_U8": 8, "PCM_S8": 8, "ULAW": 8, "ALAW": 8, "PCM_16": 16}.get(subtype)
    rail = 1.0 - 1.5 / 2 ** (bits - 1) if bits else RAIL_LEVEL
    lossy = subtype in LOSSY_SUBTYPES
    worst = 0
    for channel in np.atleast_2d(samples.T):
        at_rail = np.abs(channel) >= rail
        if not lossy:
            equal = channel[1:] == channel[:-1]
            flat = np.zeros_like(at_rail)
            flat[1:] |= equal
            flat[:-1] |= equal
            at_rail &= flat
        worst = max(worst, int(np.count_nonzero(at_rail)))
    return worst


def normalise_loudness(y: np.ndarray, sr: int, *, top_db: float) -> np.ndarray:
    """Scale so the speech frames' RMS is TARGET_SPEECH_DBFS, without peaks past PEAK_LIMIT."""
    levels = frame_levels_db(y, sr)
    speech = levels[levels >= levels.max() - top_db]
    speech_db = 10.0 * np.log10(np.mean(10.0 ** (speech / 10.0)))
    gain = 10.0 ** ((TARGET_SPEECH_DBFS - speech_db) / 20.0)
    peak = float(np.abs(y).max())
    if peak * gain > PEAK_LIMIT:
        gain = PEAK_LIMIT / peak
    return (y * gain).astype(np.float32)


def load_recording(path: str | Path, settings: VoiceSettings) -> Recording:
    """Read and clean one recording for feature extraction, or refuse it with the reason."""
    shown = Path(path).name
    decoded = read_audio(path, max_duration_s=settings.max_duration_s)
    y = to_mono(decoded, settings.sample_rate)
    sr = settings.sample_rate
    bounds = speech_bounds(y, sr, top_db=settings.trim_top_db)
    if bounds is None:
        raise AcquisitionError(
            f"no speech: the recording is silent (loudest frame under {SILENCE_FLOOR_DBFS:.0f} "
            "dBFS)",
            path=shown,
        )
    start, end = bounds
    speech_s = (end - start) / sr
    if speech_s < settings.min_speech_s:
        raise AcquisitionError(
            f"under {settings.min_speech_s:g} s of speech: only {speech_s:.2f} s is louder than "
            f"{settings.trim_top_db:g} dB below the peak",
            path=shown,
        )
    clipped_fraction = clipped_samples(decoded.samples, decoded.subtype) / max(
        1.0, speech_s * decoded.sample_rate
    )
    if clipped_fraction > settings.max_clipped_fraction:
        raise InputError(
            f"heavy clipping: {clipped_fraction:.1%} of the speech sits flat at full level "
            f"(at most {settings.max_clipped_fraction:.1%} allowed); record again at a lower gain",
            path=shown,
        )
    speech = normalise_loudness(y[start:end], sr, top_db=settings.trim_top_db)
    return Recording(
        samples=speech,
        sample_rate=sr,
        source_sample_rate=decoded.sample_rate,
        channels=decoded.samples.shape[1],
        source_duration_s=decoded.duration_s,
        speech_start_s=start / sr,
        clipped_fraction=clipped_fraction,
    )


def _refuse_too_long(duration_s: float, max_duration_s: float, shown: str) -> None:
    if duration_s > max_duration_s:
        raise InputError(
            f"the recording lasts {duration_s:.1f} s, longer than the {max_duration_s:g} s "
            "maximum (voice.max_duration_s); cut it to the spoken phrase",
            path=shown,
        )


def _libsndfile_reason(error: Exception) -> str:
    text = str(error)
    # libsndfile repeats the path ("Error opening '/x.wav': Format not recognised.").
    return text.split(": ", 1)[-1].strip().rstrip(".") if ": " in text else text


_SAMPLE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4}
_SAMPLE_BYTES |= {"FLOAT": 4, "DOUBLE": 8, "ULAW": 1, "ALAW": 1}


def _declared_wav_duration(path: Path, sr: int, channels: int, subtype: str) -> float | None:
    """Duration a RIFF/WAVE header announces in its data chunk; None when not applicable.

    libsndfile silently shortens a truncated WAV to the bytes present; the header still holds
    the length that was written, which is how truncation is noticed.
    """
    if subtype not in _SAMPLE_BYTES:
        return None
    with path.open("rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while chunk := handle.read(8):
            if len(chunk) < 8:
                return None
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"data":
                # 0 and 0xFFFFFFFF mean "unknown length" (streamed recordings).
                if size in (0, 0xFFFFFFFF):
                    return None
                return size / (_SAMPLE_BYTES[subtype] * channels) / sr
            handle.seek(size + (size & 1), 1)
    return None

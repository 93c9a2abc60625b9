"""Synthetic voices for the sample workspace: a source-filter model of two spoken phrases.

The source is a glottal pulse train (Rosenberg pulses, differentiated for lip radiation) at the
speaker's pitch with cycle-to-cycle jitter and shimmer, plus aspiration noise. The filter is a
cascade of five formant resonances applied frame by frame in the short-time Fourier domain, with
formant frequencies scaled by the speaker's vocal-tract length, coloured by the speaker's source
tilt and nasality, and moved per phone by the speaker's own articulation habits (accent): a
pretrained speaker encoder tells real people apart by such timbre, so different speakers must
differ in it while one speaker keeps it across takes (docs/BENCHMARKS.md, "Sample workspace and
demo"). Each phrase is a sequence of
phone-like segments (vowels, nasals, liquids, fricatives, plosive closures and bursts) whose
formant targets, voicing and frication give it its syllables; every take varies in speed, pitch,
loudness, timing and background noise.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage, signal

SAMPLE_RATE = 16_000
PHRASES = {"yes_approve": "Yes, approve", "confirm_transaction": "Confirm transaction"}
"""The approval phrases members enrol with (file stem -> words)."""
OTHER_PHRASES = {"deny_payment": "Deny payment"}
"""A phrase nobody enrols: members say it in probes, for the wrong-phrase check."""
MIN_DURATION_S = 1.0
MAX_DURATION_S = 2.5
_FRAME = 512
_HOP = 128
_NEUTRAL_TRACT_CM = 17.5
_ACCENT_SPREAD = 0.06
"""Standard deviation of a speaker's relative formant offsets per phone."""
_BANDWIDTHS = np.array([80.0, 100.0, 140.0, 220.0, 300.0])


@dataclasses.dataclass(frozen=True)
class Phone:
    """One segment of a phrase, with targets for a neutral (17.5 cm) vocal tract."""

    symbol: str
    """IPA-like label, for reading the phrase definitions."""
    duration_s: float
    """Length at a normal speaking rate."""
    formants: tuple[float, float, float]
    """F1, F2, F3 targets in Hz."""
    voicing: float
    """Amplitude of the glottal source (0 = voiceless)."""
    frication: float
    """Amplitude of the frication noise."""
    noise_centre_hz: float = 5000.0
    """Centre of the frication noise band."""
    noise_width: float = 0.5
    """Width of the frication band, in natural-log units of frequency."""
    stress: float = 0.0
    """Pitch and loudness prominence of the syllable this segment carries."""


_SCHWA = (500.0, 1500.0, 2500.0)
_NASAL_N = (280.0, 1700.0, 2600.0)

PHRASE_PHONES: dict[str, tuple[Phone, ...]] = {
    "yes_approve": (
        Phone("j", 0.06, (280, 2250, 3000), 0.7, 0.0),
        Phone("ɛ", 0.13, (580, 1800, 2600), 1.0, 0.0, stress=0.6),
        Phone("s", 0.13, (400, 1800, 2700), 0.0, 0.55, 6200, 0.3),
        Phone("_", 0.11, _SCHWA, 0.0, 0.0),
        Phone("ə", 0.06, _SCHWA, 0.65, 0.0),
        Phone("p", 0.06, (400, 1100, 2300), 0.0, 0.0),
        Phone("pʰ", 0.03, (400, 1100, 2300), 0.0, 0.5, 1500, 1.2),
        Phone("ɹ", 0.07, (450, 1150, 1600), 0.8, 0.0),
        Phone("u", 0.2, (320, 900, 2300), 1.0, 0.0, stress=1.0),
        Phone("v", 0.08, (300, 1100, 2300), 0.45, 0.2, 4500, 1.0),
    ),
    "confirm_transaction": (
        Phone("k", 0.06, (400, 1800, 2500), 0.0, 0.0),
        Phone("kʰ", 0.03, (450, 1700, 2500), 0.0, 0.55, 2000, 0.6),
        Phone("ə", 0.05, _SCHWA, 0.7, 0.0),
        Phone("n", 0.06, _NASAL_N, 0.45, 0.0),
        Phone("f", 0.1, (400, 1400, 2500), 0.0, 0.3, 5000, 1.0),
        Phone("ɝ", 0.16, (480, 1350, 1700), 1.0, 0.0, stress=1.0),
        Phone("m", 0.08, (280, 1000, 2300), 0.5, 0.0),
        Phone("_", 0.05, _SCHWA, 0.0, 0.0),
        Phone("t", 0.05, (400, 1800, 2600), 0.0, 0.0),
        Phone("tʰ", 0.03, (450, 1700, 2600), 0.0, 0.6, 4500, 0.5),
        Phone("ɹ", 0.05, (450, 1200, 1600), 0.7, 0.0),
        Phone("æ", 0.11, (700, 1700, 2500), 1.0, 0.0, stress=0.4),
        Phone("n", 0.05, _NASAL_N, 0.45, 0.0),
        Phone("z", 0.08, (350, 1700, 2600), 0.35, 0.45, 6000, 0.3),
        Phone("æ", 0.12, (700, 1750, 2550), 1.0, 0.0, stress=0.8),
        Phone("k", 0.06, (400, 1900, 2500), 0.0, 0.0),
        Phone("kʰ", 0.02, (450, 1900, 2500), 0.0, 0.5, 2200, 0.6),
        Phone("ʃ", 0.12, (400, 1900, 2500), 0.0, 0.6, 3500, 0.35),
        Phone("ə", 0.05, _SCHWA, 0.6, 0.0),
        Phone("n", 0.1, _NASAL_N, 0.4, 0.0),
    ),
    "deny_payment": (
        Phone("d", 0.04, (300, 1700, 2600), 0.15, 0.0),
        Phone("dʰ", 0.015, (350, 1700, 2600), 0.2, 0.35, 4000, 0.5),
        Phone("ɪ", 0.06, (400, 1900, 2550), 0.8, 0.0),
        Phone("n", 0.05, _NASAL_N, 0.45, 0.0),
        Phone("a", 0.11, (750, 1200, 2500), 1.0, 0.0, stress=1.0),
        Phone("ɪ", 0.08, (400, 1950, 2600), 0.9, 0.0, stress=0.5),
        Phone("_", 0.06, _SCHWA, 0.0, 0.0),
        Phone("p", 0.06, (400, 1100, 2300), 0.0, 0.0),
        Phone("pʰ", 0.03, (450, 1500, 2400), 0.0, 0.5, 1500, 1.2),
        Phone("e", 0.13, (480, 1900, 2500), 1.0, 0.0, stress=0.9),
        Phone("ɪ", 0.05, (400, 2000, 2600), 0.8, 0.0),
        Phone("m", 0.07, (280, 1000, 2300), 0.5, 0.0),
        Phone("ə", 0.05, _SCHWA, 0.6, 0.0),
        Phone("n", 0.05, _NASAL_N, 0.4, 0.0),
        Phone("t", 0.04, (400, 1800, 2600), 0.0, 0.0),
        Phone("tʰ", 0.03, (450, 1700, 2600), 0.0, 0.5, 4500, 0.5),
    ),
}
"""The segments of each phrase (American English, roughly)."""


@dataclasses.dataclass(frozen=True)
class Voice:
    """What makes one person's voice theirs: fixed across every take."""

    pitch_hz: float
    """Mean fundamental frequency."""
    tract_cm: float
    """Vocal-tract length; formants scale with 17.5 / tract_cm."""
    formant_offsets: tuple[float, ...]
    """Relative offset of each of the four formants (accent, anatomy), e.g. 0.04 = 4% higher."""
    bandwidth_scale: float
    """Formant bandwidths relative to the usual ones (higher = duller, more damped)."""
    open_quotient: float
    """Share of the glottal cycle the glottis is open (higher = softer, breathier source)."""
    breathiness: float
    """Aspiration noise mixed into the voiced source."""
    jitter: float
    """Cycle-to-cycle relative pitch perturbation (standard deviation)."""
    shimmer: float
    """Cycle-to-cycle relative amplitude perturbation (standard deviation)."""
    rate: float
    """Speaking rate relative to the phrase definitions (higher = faster)."""
    intonation: float
    """Range of pitch movement across the phrase, relative to the mean pitch."""
    tilt_db: float
    """Spectral slope of the source above 1 kHz in dB per octave, relative to the usual
    (negative = a softer, darker voice; positive = a pressed, brighter one)."""
    high_formants: tuple[float, float]
    """F4 and F5 for a neutral tract in Hz: set by the larynx tube and the piriform sinuses,
    which differ between people more than between one person's vowels."""
    nasality: float
    """Low-frequency nasal murmur mixed into every voiced sound (a nasal-sounding voice)."""
    accent_seed: int
    """Seed of the speaker's own formant targets per phone (dialect and articulation habits),
    the same in every take."""


@dataclasses.dataclass(frozen=True)
class Take:
    """How one recording differs from the others of the same speaker."""

    stretch: float
    """Duration factor of this take."""
    pitch_factor: float
    """Mean pitch of this take relative to the speaker's."""
    formant_factor: float
    """Small shift of all formants (articulation varies between takes)."""
    lead_s: float
    """Silence before the phrase."""
    tail_s: float
    """Silence after the phrase."""
    peak: float
    """Peak amplitude (0..1 of full scale)."""
    noise_db: float
    """Background noise level relative to the speech peak, in dB."""
    hum: bool
    """Mains hum (50 Hz and harmonics) in the background."""
    seed: int
    """Seed of this take's noise and perturbations."""


def random_voice(rng: np.random.Generator) -> Voice:
    """A speaker drawn from the population every member and stranger comes from."""
    female = rng.random() < 0.5
    return Voice(
        pitch_hz=float(rng.uniform(170, 245) if female else rng.uniform(88, 150)),
        tract_cm=float(rng.uniform(13.8, 16.0) if female else rng.uniform(16.2, 18.8)),
        formant_offsets=tuple(float(x) for x in rng.normal(0, 0.09, 4)),
        bandwidth_scale=float(rng.uniform(0.8, 1.5)),
        open_quotient=float(rng.uniform(0.45, 0.75)),
        breathiness=float(rng.uniform(0.01, 0.12)),
        jitter=float(rng.uniform(0.004, 0.015)),
        shimmer=float(rng.uniform(0.02, 0.08)),
        rate=float(rng.uniform(0.88, 1.15)),
        intonation=float(rng.uniform(0.06, 0.2)),
        tilt_db=float(rng.uniform(-6.0, 3.0)),
        high_formants=(float(rng.uniform(3200, 3900)), float(rng.uniform(4200, 5000))),
        nasality=float(rng.uniform(0.0, 1.0)),
        accent_seed=int(rng.integers(2**31)),
    )


def resembling_voice(voice: Voice, rng: np.random.Generator) -> Voice:
    """Another speaker who sounds like ``voice``: pitch 2-7% apart, vocal tract 0.3-0.8 cm
    apart, similar source, timbre and rate, but their own articulation habits."""
    return dataclasses.replace(
        voice,
        pitch_hz=float(voice.pitch_hz * (1 + _either_way(rng, 0.02, 0.07))),
        tract_cm=float(voice.tract_cm + _either_way(rng, 0.3, 0.8)),
        formant_offsets=tuple(float(x + rng.normal(0, 0.04)) for x in voice.formant_offsets),
        bandwidth_scale=float(voice.bandwidth_scale * rng.uniform(0.9, 1.1)),
        breathiness=float(voice.breathiness * rng.uniform(0.7, 1.3)),
        rate=float(voice.rate * rng.uniform(0.95, 1.05)),
        tilt_db=float(voice.tilt_db + rng.uniform(-1.5, 1.5)),
        nasality=float(np.clip(voice.nasality + rng.uniform(-0.2, 0.2), 0.0, 1.0)),
        accent_seed=int(rng.integers(2**31)),
    )


def _either_way(rng: np.random.Generator, low: float, high: float) -> float:
    """A difference of ``low`` to ``high``, up or down: a look-alike is never a clone."""
    return float(rng.choice((-1.0, 1.0)) * rng.uniform(low, high))


def random_take(rng: np.random.Generator, *, difficulty: float = 0.0) -> Take:
    """Conditions of one recording; ``difficulty`` 0 is a quiet enrolment, 1 a hard probe."""
    return Take(
        stretch=float(rng.uniform(0.9, 1.1) * (1 + 0.08 * difficulty * rng.uniform(-1, 1))),
        pitch_factor=float(rng.normal(1.0, 0.02 + 0.03 * difficulty)),
        formant_factor=float(rng.normal(1.0, 0.005 + 0.007 * difficulty)),
        lead_s=float(rng.uniform(0.1, 0.3)),
        tail_s=float(rng.uniform(0.1, 0.3)),
        peak=float(rng.uniform(0.35, 0.8)),
        noise_db=float(rng.uniform(-52, -42) + 14 * difficulty * rng.random()),
        hum=bool(rng.random() < 0.1 + 0.2 * difficulty),
        seed=int(rng.integers(2**31)),
    )


def synthesise(voice: Voice, phrase: str, take: Take) -> np.ndarray:
    """One take of ``phrase`` spoken by ``voice``: float32 mono at SAMPLE_RATE, 1 to 2.5 s."""
    rng = np.random.default_rng(take.seed)
    phones = PHRASE_PHONES[phrase]
    tempo = take.stretch / voice.rate
    durations = (
        np.array([p.duration_s for p in phones]) * tempo * rng.uniform(0.75, 1.25, len(phones))
    )
    speech_s = float(durations.sum())
    lead = take.lead_s
    tail = take.tail_s
    # Keep the clip within the duration contract by trimming the silences, never the speech.
    spare = MAX_DURATION_S - 0.02 - speech_s
    if lead + tail > spare:
        lead, tail = lead * spare / (lead + tail), tail * spare / (lead + tail)
    lead += max(0.0, MIN_DURATION_S + 0.02 - (lead + speech_s + tail))
    length = int(round((lead + speech_s + tail) * SAMPLE_RATE))

    frames = np.arange(0, length + _HOP, _HOP) / SAMPLE_RATE
    tracks = _tracks(phones, durations, lead, frames, voice, take, rng)
    voiced = _glottal_source(voice, take, tracks, length, rng)
    noise = rng.normal(0, 1, length).astype(np.float32)
    speech = _filter(voiced, noise, tracks, voice)
    speech = speech / (np.abs(speech).max() + 1e-9) * take.peak
    background = _background(rng, length, take) * take.peak
    return (speech + background).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class _Tracks:
    """Per-frame synthesis parameters, sampled every _HOP samples."""

    formants: np.ndarray
    """(frames, 5) formant frequencies in Hz."""
    voicing: np.ndarray
    frication: np.ndarray
    noise_centre: np.ndarray
    noise_width: np.ndarray
    pitch: np.ndarray
    """Fundamental frequency per frame in Hz."""
    tract_scale: float
    """Factor of this take's vocal tract on a neutral tract's frequencies."""


def _tracks(
    phones: tuple[Phone, ...],
    durations: np.ndarray,
    lead: float,
    frames: np.ndarray,
    voice: Voice,
    take: Take,
    rng: np.random.Generator,
) -> _Tracks:
    starts = lead + np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    middles = starts + durations / 2
    # Which segment each frame falls in (before the first: first; after the last: last).
    segment = np.clip(np.searchsorted(starts + durations, frames), 0, len(phones) - 1)
    inside = (frames >= lead) & (frames < lead + durations.sum())

    scale = _NEUTRAL_TRACT_CM / voice.tract_cm * take.formant_factor
    offsets = 1 + np.array(voice.formant_offsets)
    targets = np.array([[*p.formants, *voice.high_formants] for p in phones]) * scale
    targets[:, :4] *= offsets
    targets[:, :3] *= np.array([_accent(voice.accent_seed, p.symbol) for p in phones])
    # Articulation is never the same twice: each vowel's targets move a little per take.
    targets[:, :3] *= rng.normal(1, 0.02, (len(phones), 3))
    # Co-articulation: formants glide between segment midpoints.
    formants = np.stack(
        [np.interp(frames, middles, targets[:, k]) for k in range(len(_BANDWIDTHS))], axis=1
    )

    smooth = 0.012 * SAMPLE_RATE / _HOP  # about 12 ms of onset and offset

    def stepped(values: list[float]) -> np.ndarray:
        track = np.where(inside, np.array(values)[segment], 0.0)
        return ndimage.gaussian_filter1d(track, smooth)

    stress = stepped([p.stress for p in phones])
    voicing = stepped([p.voicing for p in phones]) * (1 + 0.3 * stress)
    frication = stepped([p.frication for p in phones])
    centre = np.array([p.noise_centre_hz for p in phones])[segment] * scale
    width = np.array([p.noise_width for p in phones])[segment]

    # Declination from the start to the end of the phrase, a rise on stressed syllables.
    position = np.clip((frames - lead) / max(durations.sum(), 1e-3), 0, 1)
    intonation = voice.intonation * rng.uniform(0.7, 1.3)
    contour = 1 + intonation * (0.5 - position) + intonation * 1.2 * stress
    pitch = voice.pitch_hz * take.pitch_factor * contour
    return _Tracks(formants, voicing, frication, centre, width, pitch, scale)


def _accent(accent_seed: int, symbol: str) -> np.ndarray:
    """The speaker's habitual F1-F3 factors for one phone, the same wherever it occurs."""
    return np.random.default_rng([accent_seed, *symbol.encode()]).normal(1.0, _ACCENT_SPREAD, 3)


def _glottal_source(
    voice: Voice, take: Take, tracks: _Tracks, length: int, rng: np.random.Generator
) -> np.ndarray:
    """Differentiated Rosenberg pulses with jitter and shimmer, plus aspiration noise."""
    positions = np.arange(length) * (1.0 / _HOP)
    pitch = np.interp(positions, np.arange(len(tracks.pitch)), tracks.pitch)
    # Jitter: each glottal cycle gets its own small period perturbation.
    cycles = int(np.ceil(pitch.sum() / SAMPLE_RATE)) + 2
    cycle_jitter = rng.normal(0, voice.jitter, cycles)
    cycle_shimmer = np.clip(rng.normal(1, voice.shimmer, cycles), 0.5, 1.5)
    smooth_phase = np.cumsum(pitch) / SAMPLE_RATE
    cycle_index = np.minimum(smooth_phase.astype(int), cycles - 1)
    phase = np.cumsum(pitch * (1 + cycle_jitter[cycle_index])) / SAMPLE_RATE
    cycle_index = np.minimum(phase.astype(int), cycles - 1)
    within = phase - np.floor(phase)
    opening = voice.open_quotient * 0.6
    closing = voice.open_quotient * 0.4
    pulse = np.where(
        within < opening,
        0.5 * (1 - np.cos(np.pi * within / opening)),
        np.where(
            within < opening + closing,
            np.cos(0.5 * np.pi * (within - opening) / closing),
            0.0,
        ),
    )
    flow = pulse * cycle_shimmer[cycle_index]
    source = np.diff(flow, prepend=0.0)
    source = source / (np.abs(source).max() + 1e-9)
    aspiration = rng.normal(0, voice.breathiness, length) * (0.4 + flow)
    voicing = np.interp(positions, np.arange(len(tracks.voicing)), tracks.voicing)
    return ((source + aspiration) * voicing).astype(np.float32)


def _filter(voiced: np.ndarray, noise: np.ndarray, tracks: _Tracks, voice: Voice) -> np.ndarray:
    """Shape the sources frame by frame: formants for the voice, bands for frication."""
    _, _, voiced_spectrum = signal.stft(
        voiced, nperseg=_FRAME, noverlap=_FRAME - _HOP, boundary="zeros"
    )
    _, _, noise_spectrum = signal.stft(
        noise, nperseg=_FRAME, noverlap=_FRAME - _HOP, boundary="zeros"
    )
    count = voiced_spectrum.shape[1]
    index = np.minimum(np.arange(count), len(tracks.voicing) - 1)
    frequencies = np.fft.rfftfreq(_FRAME, 1 / SAMPLE_RATE)[:, None]
    bandwidths = _BANDWIDTHS * voice.bandwidth_scale
    envelope = np.ones((len(frequencies), count))
    for k, bandwidth in enumerate(bandwidths):
        envelope = envelope * _resonance(frequencies, tracks.formants[index, k][None, :], bandwidth)
    envelope = envelope * _timbre(frequencies, voice, tracks.tract_scale)
    log_frequency = np.log(np.maximum(frequencies, 50.0))
    band = np.exp(
        -0.5
        * (
            (log_frequency - np.log(tracks.noise_centre[index])[None, :])
            / tracks.noise_width[index][None, :]
        )
        ** 2
    )
    frication = tracks.frication[index][None, :] * band * 0.08
    spectrum = voiced_spectrum * envelope + noise_spectrum * frication
    _, speech = signal.istft(spectrum, nperseg=_FRAME, noverlap=_FRAME - _HOP, boundary=True)
    return speech[: len(voiced)].astype(np.float32)


def _resonance(frequencies: np.ndarray, centre: np.ndarray | float, bandwidth: float) -> np.ndarray:
    """Gain of a second-order resonance at ``frequencies``, 1 at 0 Hz."""
    return centre**2 / np.sqrt((centre**2 - frequencies**2) ** 2 + (bandwidth * frequencies) ** 2)


def _timbre(frequencies: np.ndarray, voice: Voice, tract_scale: float) -> np.ndarray:
    """The speaker's fixed colouring of every voiced sound: source tilt and nasal murmur."""
    tilt = (np.maximum(frequencies, 1000.0) / 1000.0) ** (voice.tilt_db / 6.02)
    return tilt * (1 + voice.nasality * _resonance(frequencies, 260.0 * tract_scale, 100.0))


def _background(rng: np.random.Generator, length: int, take: Take) -> np.ndarray:
    """Room noise (pinkish), optionally mains hum, at ``take.noise_db`` below the peak."""
    white = rng.normal(0, 1, length)
    pink = signal.lfilter([0.05, -0.04], [1, -0.97], white)
    pink /= np.abs(pink).max() + 1e-9
    noise = pink * 10 ** (take.noise_db / 20)
    if take.hum:
        t = np.arange(length) / SAMPLE_RATE
        hum = sum(np.sin(2 * np.pi * 50 * h * t + rng.uniform(0, 6.3)) / h for h in (1, 2, 3))
        noise = noise + hum * 10 ** ((take.noise_db + 6) / 20)
    return noise.astype(np.float32)


def to_wav_bytes(samples: np.ndarray) -> bytes:
    """16-bit PCM mono WAV at SAMPLE_RATE, byte-identical for identical samples."""
    import io
    import wave

    pcm = (np.clip(samples, -1, 1) * 32767).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(pcm.tobytes())
    return buffer.getvalue()

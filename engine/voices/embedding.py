"""A pretrained speaker embedding (d-vector) of a cleaned clip, in numpy.

The encoder is Resemblyzer's GE2E speaker encoder (Apache-2.0, by Corentin Jemine), trained on
thousands of speakers and recording sessions, which FSDD's six speakers cannot teach a model:
a 3-layer LSTM (hidden 256) over 40-band mel power frames (25 ms windows, 10 ms hop, 16 kHz),
the last layer's final hidden state through a linear layer, ReLU and L2 normalisation. The
weights are read from the checkpoint inside the installed Resemblyzer 0.1.4 distribution
(installed without its dependencies: ``pip install --no-deps Resemblyzer==0.1.4``, as the README
says; its package, which needs torch, is never imported), checked against the checkpoint's
SHA-256 and parsed by engine.voices.checkpoint, which runs none of the file's code. Nothing is
downloaded at run time. Neither torch nor librosa is imported: the STFT and the mel filterbank
are those of engine.voices.features.

A one-word clip is shorter than the 1.6 s partial utterances the encoder was trained on; the
clip is repeated up to that length, which separated FSDD's speakers across sessions far better
than the clip alone or Resemblyzer's zero padding (docs/BENCHMARKS.md, "Voice factor").
"""

from __future__ import annotations

import functools
import hashlib
import math
from pathlib import Path

import numpy as np

from engine.core.errors import InputError
from engine.voices.checkpoint import read_legacy_checkpoint
from engine.voices.features import mel_basis, stft_magnitude

ENCODER_SAMPLE_RATE = 16_000
ENCODER_FFT = 400
"""25 ms at 16 kHz; librosa.feature.melspectrogram's window is the whole FFT."""
ENCODER_HOP = 160
ENCODER_MELS = 40
ENCODER_LAYERS = 3
EMBEDDING_SIZE = 256
PARTIAL_S = 1.6
"""Length of the encoder's training utterances: shorter clips are repeated up to it."""
ENCODER_LEVEL_DBFS = -30.0
"""Resemblyzer raises quieter clips to this RMS level (never lowers louder ones)."""
CHECKPOINT_DISTRIBUTION = "Resemblyzer"
CHECKPOINT_FILE = "resemblyzer/pretrained.pt"
CHECKPOINT_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
"""Of Resemblyzer 0.1.4's checkpoint; checked at load so that a damaged or swapped file is
refused instead of giving quietly wrong embeddings. Also part of the voice features' cache key."""
INSTALL_HINT = f"pip install --no-deps {CHECKPOINT_DISTRIBUTION}==0.1.4"


def encoder_weight_names() -> list[str]:
    """The checkpoint's tensors the encoder uses, in PyTorch's state-dict names."""
    names = [
        f"lstm.{kind}_l{layer}"
        for layer in range(ENCODER_LAYERS)
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    ]
    return [*names, "linear.weight", "linear.bias"]


def checkpoint_path() -> Path:
    """Where the installed Resemblyzer distribution keeps its checkpoint (found from the
    distribution's metadata, so its package, which imports torch, is never imported)."""
    from importlib import metadata

    try:
        distribution = metadata.distribution(CHECKPOINT_DISTRIBUTION)
    except metadata.PackageNotFoundError as error:
        raise InputError(
            f"the speaker encoder's weights are not installed: run `{INSTALL_HINT}`"
        ) from error
    return Path(str(distribution.locate_file(CHECKPOINT_FILE)))


@functools.cache
def encoder_weights() -> dict[str, np.ndarray]:
    """The encoder's weights and mel filterbank, read once per process."""
    path = checkpoint_path()
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(
            f"the speaker encoder's weights are missing ({error}): run `{INSTALL_HINT}`"
        ) from error
    if hashlib.sha256(data).hexdigest() != CHECKPOINT_SHA256:
        raise InputError(f"{path} is damaged (SHA-256 mismatch): run `{INSTALL_HINT}` again")
    state = read_legacy_checkpoint(data)["model_state"]
    weights = {name: np.ascontiguousarray(state[name]) for name in encoder_weight_names()}
    weights["mel_basis"] = mel_basis(ENCODER_SAMPLE_RATE, ENCODER_FFT, ENCODER_MELS)
    return weights


def encoder_frames(y: np.ndarray) -> np.ndarray:
    """(T, 40) mel power frames as Resemblyzer's front end computes them from a 16 kHz clip
    (librosa.feature.melspectrogram's framing, power 2, no logarithm)."""
    y = np.asarray(y, dtype=np.float32)
    rms = math.sqrt(float(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
    if 0.0 < rms < 10 ** (ENCODER_LEVEL_DBFS / 20):
        y = y * np.float32(10 ** (ENCODER_LEVEL_DBFS / 20) / rms)
    power = np.square(
        stft_magnitude(y, n_fft=ENCODER_FFT, hop_length=ENCODER_HOP, win_length=ENCODER_FFT)
    )
    return (encoder_weights()["mel_basis"] @ power).T.astype(np.float32)


def speaker_embedding(y: np.ndarray, sr: int) -> np.ndarray:
    """(256,) unit-norm, non-negative speaker embedding of a cleaned clip, repeated up to
    ``PARTIAL_S``."""
    y = np.asarray(y, dtype=np.float32)
    if y.size == 0:
        raise InputError("no speech to embed")
    if sr != ENCODER_SAMPLE_RATE:
        import soxr

        y = soxr.resample(y, sr, ENCODER_SAMPLE_RATE, quality="HQ").astype(np.float32)
    y = np.tile(y, math.ceil(PARTIAL_S * ENCODER_SAMPLE_RATE / len(y)))
    weights = encoder_weights()
    sequence = encoder_frames(y)
    for layer in range(ENCODER_LAYERS):
        sequence = _lstm_layer(sequence, weights, layer)
    hidden = np.maximum(weights["linear.weight"] @ sequence[-1] + weights["linear.bias"], 0.0)
    norm = float(np.linalg.norm(hidden))
    return hidden / norm if norm > 0 else hidden


def _lstm_layer(inputs: np.ndarray, weights: dict[str, np.ndarray], layer: int) -> np.ndarray:
    """PyTorch's LSTM layer (gates in the order input, forget, cell, output) over (T, n_in)
    inputs from zero state; returns the (T, hidden) outputs."""
    recurrent = weights[f"lstm.weight_hh_l{layer}"].T
    projected = (
        inputs @ weights[f"lstm.weight_ih_l{layer}"].T
        + weights[f"lstm.bias_ih_l{layer}"]
        + weights[f"lstm.bias_hh_l{layer}"]
    )
    size = recurrent.shape[0]
    hidden = np.zeros(size, dtype=np.float32)
    cell = np.zeros(size, dtype=np.float32)
    outputs = np.empty((len(inputs), size), dtype=np.float32)
    for step, gates in enumerate(projected):
        gates = gates + hidden @ recurrent
        input_gate = _sigmoid(gates[:size])
        forget_gate = _sigmoid(gates[size : 2 * size])
        cell = forget_gate * cell + input_gate * np.tanh(gates[2 * size : 3 * size])
        hidden = _sigmoid(gates[3 * size :]) * np.tanh(cell)
        outputs[step] = hidden
    return outputs


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))

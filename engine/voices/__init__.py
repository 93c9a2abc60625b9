"""Recordings: safe loading and cleaning, augmentation, the frame features of one shared STFT, and
the waveform / spectrogram views."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

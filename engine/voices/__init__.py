"""Recordings: safe loading and cleaning, augmentation, the STFT and MFCC, the speaker embedding,
and the waveform / spectrogram views."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

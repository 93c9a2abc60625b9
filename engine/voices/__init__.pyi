from .audio import (
    Recording as Recording,
    load_recording as load_recording,
)
from .extract import (
    VoiceSample as VoiceSample,
    extract_voice_features as extract_voice_features,
    load_mfcc_sequences as load_mfcc_sequences,
    voice_sample as voice_sample,
)
from .views import (
    ClipView as ClipView,
    clip_view as clip_view,
    save_clip_png as save_clip_png,
)

__all__ = [
    "Recording",
    "load_recording",
    "VoiceSample",
    "voice_sample",
    "extract_voice_features",
    "load_mfcc_sequences",
    "ClipView",
    "clip_view",
    "save_clip_png",
]

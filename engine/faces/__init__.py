"""Photos: safe loading, face detection and alignment, augmentation and the feature vectors of the
face model."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

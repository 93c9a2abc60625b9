"""The models stage: the face, voice and product estimators, their training, persistence and
evaluation, kept apart from the features they learn from and the flows that use them."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

"""Shared foundation of every stage: settings, workspace paths, errors, atomic file writes,
progress, parallel batches and the error-rate metrics."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

"""The sample workspace and the demo: synthetic members, strangers and customers written as a
workspace, then every stage run on it; a stage of its own because it drives all the others."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

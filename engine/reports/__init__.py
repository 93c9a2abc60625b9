"""Reports: the HTML report with its figures, and the workspace statistics the terminal app shows;
a stage of its own because it only reads what the other stages wrote."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

"""The customer stage: the raw customer tables merged into one row per customer, and members.csv,
which links enrolled members to those customers; a stage of its own because only the product
model needs it, and it needs no face or voice."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

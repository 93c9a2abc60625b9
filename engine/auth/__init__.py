"""Authentication: the two-factor decision flow, the replay defence, the audit log and
lockouts, member enrolment and the measured simulation of attempts."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

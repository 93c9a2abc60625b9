"""mmauth's headless engine: every pipeline stage, no user interface code.

Nothing here imports textual, rich or typer, and nothing prints: front ends (the ``mmauth``
CLI and the ``mmauth-tui`` app) call these functions and do the talking.
"""

from importlib.metadata import version

# pyproject.toml holds the one version number; the installed distribution's metadata carries it.
__version__ = version("mmauth")

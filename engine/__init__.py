"""mmauth's headless engine: every pipeline stage, no user interface code.

Nothing here imports textual, rich or typer, and nothing prints: front ends (the ``mmauth``
CLI and the ``mmauth-tui`` app) call these functions and do the talking.
"""

__version__ = "0.1.0"

"""Entry point of ``mmauth``: builds the typer app from the command modules.

Command modules import heavy libraries (scikit-learn, librosa, textual) inside their functions,
so ``mmauth --help`` starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.commands import (
    auth,
    config,
    evaluate,
    features,
    members,
    merge,
    report,
    sample,
    simulate,
    train,
    trust,
    views,
)
from cli.output import WorkspaceOption, handle_errors

COMMAND_MODULES = [
    config,
    sample,
    features,
    merge,
    train,
    evaluate,
    auth,
    members,
    simulate,
    report,
    trust,
    views,
]


def create_app() -> typer.Typer:
    """A fresh typer app with every command registered (tests use this factory too)."""
    app = typer.Typer(
        name="mmauth",
        help="Multimodal (face + voice) authentication with a product recommendation step.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        # Markdown joins the wrapped lines of docstrings instead of keeping their line breaks.
        rich_markup_mode="markdown",
    )

    @app.callback()
    def main_options(ctx: typer.Context, workspace: WorkspaceOption = None) -> None:
        """Multimodal (face + voice) authentication with a product recommendation step."""
        ctx.obj = {"workspace": workspace}

    @app.command("tui")
    def tui(
        ctx: typer.Context,
        workspace: WorkspaceOption = None,
        create: Annotated[
            bool, typer.Option("--create", help="Create the workspace folder if it is missing.")
        ] = False,
    ) -> None:
        """Open the terminal app (same as mmauth-tui)."""
        from tui.app import run_app

        chosen: Path | None = workspace or (ctx.obj or {}).get("workspace")
        with handle_errors(False):
            run_app(chosen, create=create)

    for module in COMMAND_MODULES:
        module.register(app)
    return app


def main() -> None:
    create_app()()

"""Entry point of ``mmauth``: builds the typer app from the command modules.

Command modules import heavy libraries (scikit-learn, librosa, textual) inside their functions,
so ``mmauth --help`` starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

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


def _without_flag_values(params: list[Any]) -> list[Any]:
    """``params`` with every on/off flag's metavar empty. typer shows a flag with the value
    placeholder of its type (``--json <bool>``, ``--help <bool>``), but a flag takes no value
    (``--json true`` is refused); an explicit metavar is shown instead of the type."""
    for param in params:
        flag = getattr(param, "is_flag", False) and not getattr(param, "count", False)
        if flag and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_values(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_values(super().get_params(ctx))


def _use_flag_help(app: typer.Typer) -> None:
    """Every command and group of ``app`` (sub-apps included) built by the classes above."""
    app.info.cls = _Group
    for command in app.registered_commands:
        command.cls = _Command
    for group in app.registered_groups:
        if group.typer_instance is not None:
            _use_flag_help(group.typer_instance)


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
    _use_flag_help(app)
    return app


def main() -> None:
    create_app()()

"""`mmauth config show`: the settings in force and where they came from."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.context import open_workspace
from cli.output import JsonOption, WorkspaceOption, console, handle_errors, print_json, shown
from engine.core.settings import settings_as_dict

config_app = typer.Typer(help="Inspect settings (defaults <- mmauth.toml <- MMAUTH_* <- flags).")


@config_app.command("show")
def show(
    ctx: typer.Context, workspace: WorkspaceOption = None, as_json: JsonOption = False
) -> None:
    """Print every setting in force for the workspace."""
    with handle_errors(as_json):
        space, settings = open_workspace(ctx, workspace)
        values = settings_as_dict(settings)
        if as_json:
            print_json({"workspace": str(space.root), "settings": values})
            return
        table = Table(title=f"Settings for {shown(space.root)}", show_lines=False)
        table.add_column("setting")
        table.add_column("value")
        for key, value in values.items():
            if isinstance(value, dict) and key != "columns":
                for sub_key, sub_value in value.items():
                    table.add_row(f"{key}.{sub_key}", shown(repr(sub_value)))
            else:
                table.add_row(key, shown(repr(value)))
        console.print(table)
        source = (
            space.settings_file if space.settings_file.is_file() else "defaults (no mmauth.toml)"
        )
        console.print(f"[dim]Read from {shown(source)} and MMAUTH_* variables.[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")

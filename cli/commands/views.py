"""`mmauth voice-view`: a clip's waveform and mel spectrogram, in the terminal or as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from cli.context import open_workspace
from cli.output import JsonOption, WorkspaceOption, console, handle_errors, print_json, shown

_BARS = " ▁▂▃▄▅▆▇█"


def voice_view(
    ctx: typer.Context,
    clip: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, resolve_path=True, help="Audio file to show."),
    ],
    png: Annotated[
        Path | None,
        typer.Option("--png", dir_okay=False, help="Write waveform + mel spectrogram to this PNG."),
    ] = None,
    cleaned: Annotated[
        bool,
        typer.Option("--cleaned", help="Show the cleaned clip the voice model receives."),
    ] = False,
    width: Annotated[int, typer.Option("--width", min=10, max=400)] = 80,
    height: Annotated[int, typer.Option("--height", min=4, max=64)] = 12,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a recording: waveform (speech marked) and mel spectrogram in dB.

    Without --cleaned the clip is shown as recorded, so a refused clip can still be inspected.
    """
    with handle_errors(as_json):
        from cli.render import SpectrogramView
        from engine.voices.views import VIEW_TOP_DB, clip_view, save_clip_png

        _, settings = open_workspace(ctx, workspace)
        view = clip_view(clip, settings, width=width, height=height, cleaned=cleaned)
        written = save_clip_png(clip, settings, png, cleaned=cleaned) if png else None
        summary: dict[str, Any] = {
            "ok": True,
            "clip": str(clip),
            "duration_s": round(view.duration_s, 3),
            "sample_rate": view.sample_rate,
            "speech": list(view.speech) if view.speech else None,
            "cleaned": view.cleaned,
            "png": str(written) if written else None,
        }
        if as_json:
            print_json(summary)
            return
        console.print(_waveform_text(view.envelope_min, view.envelope_max, height // 2))
        rows, columns = view.spectrogram_db.shape
        console.print(
            SpectrogramView(
                view.spectrogram_db,
                floor_db=-VIEW_TOP_DB,
                width=columns,
                height=(rows + 1) // 2,
            )
        )
        speech = (
            f"speech {view.speech[0]:.2f}-{view.speech[1]:.2f} s" if view.speech else "no speech"
        )
        console.print(
            f"{shown(clip.name)}: {view.duration_s:.2f} s at {view.sample_rate} Hz, {speech}, "
            f"mel 0-{view.max_frequency_hz / 1000:.1f} kHz"
            + (f"; PNG written to {shown(written)}" if written else ""),
            highlight=False,
        )


def _waveform_text(lows: Any, highs: Any, rows: int) -> Text:
    """Bars of each column's peak level, mirrored around the centre line."""
    import numpy as np

    rows = max(1, rows)
    level = np.maximum(np.abs(lows), np.abs(highs))
    eighths = np.rint(np.clip(level / max(float(level.max()), 1e-9), 0, 1) * rows * 8).astype(int)
    text = Text()
    for row in range(rows - 1, -1, -1):
        cells = np.clip(eighths - row * 8, 0, 8)
        text.append("".join(_BARS[c] for c in cells) + "\n", style="#4f9fd8")
    return text


def register(app: typer.Typer) -> None:
    app.command("voice-view")(voice_view)

"""The top line of every screen: the app, the workspace, and every screen with its key."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from tui.navigation import SCREEN_TITLES, screen_key


class ScreenBar(Static):
    """``mmauth · <workspace>`` then ``F2 Stats  F3 Train ...`` with the current screen lit."""

    DEFAULT_CSS = """
    ScreenBar {
        dock: top;
        height: 1;
        width: 1fr;
        background: $panel;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def on_mount(self) -> None:
        parts = [Content.from_markup(" [b]mmauth[/] · $name  ", name=self.app.sub_title)]
        for mode, title in SCREEN_TITLES.items():
            style = "reverse bold" if mode == self.current else "dim"
            parts.append(
                Content.from_markup(
                    f"[b]$key[/] [{style}] $title [/] ", key=screen_key(mode).upper(), title=title
                )
            )
        self.update(Content("").join(parts))

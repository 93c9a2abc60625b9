"""A DirectoryTree that lists only folders and media files of chosen kinds, picked ones marked."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.style import Style
from rich.text import Text
from textual.widgets import DirectoryTree
from textual.widgets._directory_tree import DirEntry
from textual.widgets.tree import TreeNode

PICKED_MARK = "\u2714 "


class MediaTree(DirectoryTree):
    """Folders and files whose suffix is in ``suffixes``; hidden entries are left out; files in
    ``picked`` carry a mark.

    ``bare_names`` also keeps files without an extension (photo sets like Yale's name them so).
    """

    DEFAULT_CSS = """
    MediaTree {
        width: 1fr;
        height: 1fr;
    }
    """

    def __init__(
        self,
        path: str | Path,
        suffixes: Iterable[str],
        *,
        bare_names: bool = False,
        id: str | None = None,
    ) -> None:
        self.suffixes = frozenset(s.lower() for s in suffixes)
        self.bare_names = bare_names
        self.picked: frozenset[Path] = frozenset()
        super().__init__(path, id=id)
        # Narrow indentation keeps long file names (confirm_transaction_2.wav) in view.
        self.guide_depth = 2

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return sorted(
            (p for p in paths if not p.name.startswith(".") and self._wanted(p)),
            key=lambda p: (not p.is_dir(), p.name.lower()),
        )

    def _wanted(self, path: Path) -> bool:
        if path.is_dir():
            return True
        suffix = path.suffix.lower()
        return suffix in self.suffixes or (self.bare_names and not suffix)

    def mark_picked(self, paths: Iterable[Path]) -> None:
        """Mark these files (and only these) as picked."""
        self.picked = frozenset(path.resolve() for path in paths)
        # Tree caches rendered lines; this (pinned Textual) is how it drops them.
        self._invalidate()

    def render_label(self, node: TreeNode[DirEntry], base_style: Style, style: Style) -> Text:
        label = super().render_label(node, base_style, style)
        if node.data is not None and node.data.path in self.picked:
            return Text.assemble((PICKED_MARK, "bold green"), label)
        return label


def first_folder(*candidates: Path) -> Path:
    """The first candidate that is an existing folder (the last one when none is)."""
    return next((c for c in candidates if c.is_dir()), candidates[-1])

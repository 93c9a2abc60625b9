"""A DirectoryTree that lists only folders and media files of chosen kinds."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.widgets import DirectoryTree


class MediaTree(DirectoryTree):
    """Folders and files whose suffix is in ``suffixes``; hidden entries are left out.

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
        super().__init__(path, id=id)

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


def first_folder(*candidates: Path) -> Path:
    """The first candidate that is an existing folder (the home folder when none is)."""
    return next((c for c in candidates if c.is_dir()), Path.home())

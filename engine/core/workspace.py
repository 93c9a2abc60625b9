"""The one module that knows where things live inside a workspace folder."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path

from engine.core.errors import MissingWorkspaceError

WORKSPACE_ENV = "MMAUTH_WORKSPACE"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclasses.dataclass(frozen=True)
class Workspace:
    """Paths of a workspace, following the layout every command relies on."""

    root: Path
    """The workspace folder itself."""

    @property
    def settings_file(self) -> Path:
        return self.root / "mmauth.toml"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def customers_dir(self) -> Path:
        """Social profiles, transactions, optional id mapping, members.csv."""
        return self.raw_dir / "customers"

    @property
    def members_file(self) -> Path:
        """member,customer_id: links an enrolled person to a customer."""
        return self.customers_dir / "members.csv"

    @property
    def faces_dir(self) -> Path:
        """Enrolment photos, one folder per member."""
        return self.raw_dir / "faces"

    @property
    def voices_dir(self) -> Path:
        """Enrolment recordings, one folder per member."""
        return self.raw_dir / "voices"

    @property
    def probe_faces_dir(self) -> Path:
        """Photos to authenticate, one folder per label (a member or a stranger's name)."""
        return self.raw_dir / "probes" / "faces"

    @property
    def probe_voices_dir(self) -> Path:
        return self.raw_dir / "probes" / "voices"

    @property
    def processed_dir(self) -> Path:
        return self.data_dir / "processed"

    @property
    def augmented_dir(self) -> Path:
        return self.processed_dir / "augmented"

    @property
    def cache_dir(self) -> Path:
        """Feature cache keyed by file content and parameters."""
        return self.processed_dir / "cache"

    @property
    def merged_dataset(self) -> Path:
        return self.data_dir / "merged_dataset.csv"

    @property
    def merge_report(self) -> Path:
        return self.data_dir / "merge_report.json"

    @property
    def image_features(self) -> Path:
        return self.data_dir / "image_features.csv"

    @property
    def audio_features(self) -> Path:
        return self.data_dir / "audio_features.csv"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def manifest(self) -> Path:
        return self.models_dir / "manifest.json"

    @property
    def training_summary(self) -> Path:
        return self.models_dir / "training_summary.csv"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def database(self) -> Path:
        """SQLite audit store."""
        return self.root / "mmauth.db"

    def relative(self, path: Path) -> str:
        """A path as written in outputs: relative to the workspace when inside it, POSIX style."""
        path = Path(path)
        # Lexically first: a symlink inside the workspace (to a shared dataset) keeps its own
        # workspace path instead of the target's.
        for candidate, root in (
            (Path(os.path.abspath(path)), Path(os.path.abspath(self.root))),
            (path.resolve(), self.root.resolve()),
        ):
            with contextlib.suppress(ValueError):
                return candidate.relative_to(root).as_posix()
        return path.as_posix()


def resolve_workspace(option: str | os.PathLike[str] | None = None) -> Workspace:
    """The workspace: the --workspace option, else $MMAUTH_WORKSPACE, else the current directory."""
    chosen = option or os.environ.get(WORKSPACE_ENV) or os.getcwd()
    return Workspace(root=Path(chosen).expanduser().resolve())


def existing_workspace(option: str | os.PathLike[str] | None = None) -> Workspace:
    """resolve_workspace(), refusing a folder that does not exist (a mistyped path must not
    become an empty workspace): MissingWorkspaceError names it."""
    space = resolve_workspace(option)
    if not space.root.is_dir():
        what = "is not a folder" if space.root.exists() else "does not exist"
        raise MissingWorkspaceError(
            f"the workspace {space.root} {what}: check the path (--workspace/-w, "
            f"${WORKSPACE_ENV}), or create one with mmauth sample (example data) or mkdir "
            "(an empty folder is a new workspace to enrol members into)"
        )
    return space


def is_empty_workspace(root: Path) -> bool:
    """True when the folder is absent or holds nothing but hidden entries."""
    if not root.exists():
        return True
    return not any(not entry.name.startswith(".") for entry in root.iterdir())


def member_folders(folder: Path) -> dict[str, list[Path]]:
    """Files under ``folder/<member>/``, sorted, per member name; hidden files are skipped."""
    members: dict[str, list[Path]] = {}
    if not folder.is_dir():
        return members
    for member_dir in sorted(
        p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
    ):
        files = sorted(
            p
            for p in member_dir.iterdir()
            if not p.name.startswith(".") and (p.is_file() or p.is_symlink())
        )
        members[member_dir.name] = files
    return members

"""Enrolment files: a member name safe as a folder name, input files checked, destinations kept
inside the workspace, and the copies made atomically (and undone if a later step fails).

These checks run before enrolment changes anything, so a refused enrolment leaves the workspace
as it was.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from engine.core.errors import EnrolmentError
from engine.core.workspace import Workspace

MAX_NAME_LENGTH = 64
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]")


def validate_member_name(name: str) -> str:
    """The name if it is safe as a folder name; EnrolmentError saying why it is not."""
    if not isinstance(name, str) or not name:
        raise EnrolmentError("the member name is empty")
    if "/" in name or "\\" in name or os.sep in name:
        raise EnrolmentError(f"member name {name!r} contains a path separator")
    if ".." in name:
        raise EnrolmentError(f"member name {name!r} contains '..'")
    if name.startswith("."):
        raise EnrolmentError(f"member name {name!r} starts with a dot (a hidden folder)")
    if len(name) > MAX_NAME_LENGTH:
        raise EnrolmentError(
            f"member name is {len(name)} characters long; at most {MAX_NAME_LENGTH}"
        )
    if not _NAME.fullmatch(name):
        raise EnrolmentError(
            f"member name {name!r} may only use letters A-Z, digits, '_', '-' and '.', "
            "and must start with a letter, digit or '_'"
        )
    return name


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def _source_problem(path: Path, root: Path) -> str | None:
    """Why an input file cannot be enrolled, or None."""
    if path.is_symlink() and not _inside(path.resolve(), root):
        return (
            f"is a symbolic link to {path.resolve()}, outside the workspace; give the file itself"
        )
    if not path.exists():
        return "no such file"
    if not path.is_file():
        return "is not a regular file"
    if path.stat().st_size == 0:
        return "is empty (0 bytes)"
    return None


def destination_folder(workspace: Workspace, parent: Path, name: str) -> Path:
    """``parent/name``, refused when it (or a folder above it) would lead out of the workspace."""
    root = workspace.root.resolve()
    folder = parent / name
    for checked in (parent, folder):
        if checked.is_symlink() or (checked.exists() and not _inside(checked.resolve(), root)):
            raise EnrolmentError(
                f"{workspace.relative(checked)} is a symbolic link or leads outside the "
                "workspace; enrolment only writes inside the workspace"
            )
    if not _inside(folder.resolve(), root):
        raise EnrolmentError(f"{folder} would be outside the workspace {root}")
    return folder


def destination_name(path: Path) -> str:
    """The file name an input gets in the workspace: unsafe characters become '_'."""
    cleaned = _UNSAFE_FILE_CHARACTERS.sub("_", path.name).lstrip(".")
    return cleaned or "file"


def plan_copies(
    workspace: Workspace, sources: Sequence[Path], folder: Path
) -> list[tuple[Path, Path]]:
    """(source, destination) of every input; EnrolmentError listing every file that cannot be
    enrolled, so one refusal names all the problems at once."""
    root = workspace.root.resolve()
    problems, plan, names = [], [], set()
    for source in sources:
        problem = _source_problem(source, root)
        target = folder / destination_name(source)
        if problem is None and target.name in names:
            problem = f"has the same file name as another input ({target.name})"
        if problem is None and target.exists() and target.resolve() == source.resolve():
            problem = "is already this member's enrolment file"
        if problem is not None:
            problems.append(f"{source}: {problem}")
            continue
        names.add(target.name)
        plan.append((source, target))
    if problems:
        raise EnrolmentError("cannot enrol these files:", details=problems)
    return plan


class ReplacementRefusedError(EnrolmentError):
    """Enrolment would overwrite enrolment files of the member and was not asked to replace
    them; ``files`` are their workspace-relative paths."""

    title = "Enrolment would replace files"

    def __init__(self, name: str, files: Sequence[str]) -> None:
        super().__init__(
            f"nothing was changed: {name} already has enrolment files of these names, which "
            "this enrolment would replace; rename the new files, or confirm replacing them "
            "(mmauth enroll --replace):",
            details=files,
        )
        self.files = tuple(files)


def refuse_replacing(workspace: Workspace, name: str, plan: Sequence[tuple[Path, Path]]) -> None:
    """ReplacementRefusedError when a copy of ``plan`` would overwrite an existing file: a
    member's enrolment is their identity, and a same-named photo or take is no reason to
    drop the old one without being asked."""
    existing = [workspace.relative(target) for _, target in plan if target.exists()]
    if existing:
        raise ReplacementRefusedError(name, existing)


@contextlib.contextmanager
def copied_into_place(plan: Sequence[tuple[Path, Path]]) -> Iterator[int]:
    """Copy every file into place atomically; if the body fails, put everything back."""
    created: list[Path] = []
    backups: list[tuple[Path, Path]] = []
    made_folders: list[Path] = []
    backup_folder = Path(tempfile.mkdtemp(prefix="mmauth-enrol-"))
    try:
        for source, target in plan:
            if not target.parent.exists():
                target.parent.mkdir(parents=True)
                made_folders.append(target.parent)
            if target.exists():
                saved = backup_folder / f"{len(backups)}-{target.name}"
                shutil.copy2(target, saved)
                backups.append((target, saved))
            else:
                created.append(target)
            handle, temporary = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
            )
            os.close(handle)
            try:
                shutil.copyfile(source, temporary)
                os.replace(temporary, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
        yield len(backups)
    except BaseException:
        for target in created:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
        for target, saved in backups:
            os.replace(saved, target)
        for folder in reversed(made_folders):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        shutil.rmtree(backup_folder, ignore_errors=True)

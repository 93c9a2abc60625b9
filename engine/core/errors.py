"""The one exception tree of mmauth: every error a person can act on derives from MmauthError."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


class MmauthError(Exception):
    """Base of every error the engine raises on purpose.

    ``title`` is a short headline; ``message`` says what is wrong and, where possible, what to
    do about it. Front ends show both and map the class to an exit code.

    An error that lists several items (files that cannot be enrolled, ...) gives them as
    ``details``: ``message`` then holds the summary and one indented line per item, and
    ``lines`` the same lines apart. Front ends escape each line on its own
    (engine.core.text.printable_lines), because a line break inside a quoted file name must
    stay visible as ``\\n`` while the breaks between items are the product's own.
    """

    title = "mmauth error"
    exit_code = 2

    def __init__(
        self, message: str, *, title: str | None = None, details: Sequence[str] = ()
    ) -> None:
        self.lines: tuple[str, ...] = (message, *(f"  {detail}" for detail in details))
        self.message = "\n".join(self.lines)
        super().__init__(self.message)
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        return self.message


class ConfigError(MmauthError):
    """mmauth.toml, an environment variable or a flag holds a value that cannot be used."""

    title = "Invalid settings"


class InputError(MmauthError):
    """An input file or table is missing, unreadable or malformed.

    Carries the file, column and row when known, so the message can name them.
    """

    title = "Bad input"

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        column: str | None = None,
        row: int | None = None,
        title: str | None = None,
    ) -> None:
        where = []
        if path is not None:
            where.append(f"file {path}")
        if column is not None:
            where.append(f"column {column!r}")
        if row is not None:
            where.append(f"row {row}")
        full = f"{', '.join(where)}: {message}" if where else message
        super().__init__(full, title=title)
        self.path = path
        self.column = column
        self.row = row


class MissingStageError(MmauthError):
    """A stage needs the output of an earlier stage that has not been run yet."""

    title = "Missing prerequisite"


class ModelIntegrityError(MmauthError):
    """A model file is missing, unknown, tampered with or swapped: it is refused, never loaded."""

    title = "Model file refused"


class EnrolmentError(MmauthError):
    """A member name, file or customer link cannot be enrolled."""

    title = "Enrolment refused"


class UnknownMemberError(EnrolmentError):
    """A command names a member this workspace does not have (removing, unlocking)."""

    title = "No such member"


class MissingWorkspaceError(MmauthError):
    """A command that reads a workspace was pointed at a folder that does not exist."""

    title = "No such workspace"


class OutputError(MmauthError):
    """An output cannot be written: a folder on its way is a file, its path is a folder, no
    permission, no space. Raised by engine.core.fileio, which leaves whatever the output was to
    replace as it was.

    ``path`` (and ``in_the_way``, the file standing where a folder must be) are kept apart from
    the message so that a front end can name them as the person knows them: ``shown`` with
    the workspace's ``relative``.
    """

    title = "Cannot write"

    def __init__(
        self,
        path: str | os.PathLike[str],
        reason: str = "",
        *,
        in_the_way: str | os.PathLike[str] | None = None,
        title: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.reason = reason
        self.in_the_way = None if in_the_way is None else Path(in_the_way)
        super().__init__(self.shown(), title=title)

    def shown(self, where: Callable[[Path], str] = str) -> str:
        """The message with each path as ``where`` names it."""
        reason = self.reason
        if self.in_the_way is not None:
            reason = f"{where(self.in_the_way)} is a file, not a folder"
        return f"cannot write {where(self.path)}: {reason}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in worker processes too: rebuilt from its parts, not from the message alone.
        return (
            _rebuild_output_error,
            (self.path, self.reason, self.in_the_way, self.title),
        )


def _rebuild_output_error(
    path: Path, reason: str, in_the_way: Path | None, title: str
) -> OutputError:
    return OutputError(path, reason, in_the_way=in_the_way, title=title)


class CancelledError(MmauthError):
    """Long work stopped because its cancel event was set."""

    title = "Cancelled"
    exit_code = 130


class AcquisitionError(InputError):
    """Failure to acquire (ISO/IEC 19795-1 FTA): the file is readable but holds no usable sample,
    e.g. no face in a photo or no speech in a recording."""

    title = "Failure to acquire"


class MultipleFacesError(AcquisitionError):
    """A photo shows more than one face of comparable size: which person presented it cannot be
    told, so it is refused rather than decided on one of them."""

    title = "Several faces"

"""The two files of an attempt: checked before anything reads them, decoded at most once.

The face features and the replay fingerprint both need the decoded photo, and the voice
features and the replay fingerprint both need the cleaned recording: ``ProbeMedia`` decodes each
file the first time a step asks for it and hands every later step the same pixels or samples.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from engine.core.settings import Settings

if TYPE_CHECKING:
    from engine.faces.images import LoadedImage
    from engine.voices.audio import Recording

Decoded = TypeVar("Decoded")


class _Once(Generic[Decoded]):
    """A file decoded on first use; its refusal (an MmauthError) is kept like its result, so a
    later step sees the same error without reading the file again."""

    def __init__(self, decode: Callable[[], Decoded]) -> None:
        self._decode = decode
        self._value: Decoded | None = None
        self._error: Exception | None = None
        self._done = False

    def get(self) -> Decoded:
        if not self._done:
            from engine.core.errors import MmauthError

            try:
                self._value = self._decode()
            except MmauthError as error:
                self._error = error
            self._done = True
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


class ProbeMedia:
    """The attempt's photo and recording, each decoded when first needed and only once.

    ``image`` raises InputError for an unreadable photo; ``recording`` raises InputError for a
    bad file and AcquisitionError for a recording without enough speech.
    """

    def __init__(self, face_path: Path, voice_path: Path, settings: Settings) -> None:
        self.face_path = face_path
        self.voice_path = voice_path
        self._image = _Once(lambda: _read_photo(face_path, settings))
        self._recording = _Once(lambda: _load_recording(voice_path, settings))

    def image(self) -> LoadedImage:
        return self._image.get()

    def recording(self) -> Recording:
        return self._recording.get()


def _read_photo(path: Path, settings: Settings) -> LoadedImage:
    from engine.faces.extract import read_probe_photo

    return read_probe_photo(path, settings)


def _load_recording(path: Path, settings: Settings) -> Recording:
    from engine.voices.extract import load_probe_recording

    return load_probe_recording(path, settings)


def file_problem(path: Path | None) -> str | None:
    """Why a presented file cannot be used at all (missing, a folder, empty), or None."""
    if path is None:
        return "no file given"
    try:
        if not path.exists():
            return "no such file"
        if path.is_dir():
            return "is a folder, not a file"
        if not path.is_file():
            return "is not a regular file"
        if path.stat().st_size == 0:
            return "the file is empty (0 bytes)"
    except OSError as error:
        return f"cannot be inspected ({error.strerror})"
    return None

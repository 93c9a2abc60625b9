"""Output cannot be forged: names and messages from outside are shown with control characters
escaped (and, in the CLI, rich markup escaped)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import create_app
from engine.core.text import printable
from engine.core.workspace import Workspace
from tests.engine.replay_fixtures import blob_image, write_image
from tests.engine.test_auth import enrolled_workspace, probe_folder

runner = CliRunner()
FORGED = "unreadable-x\n\nGRANTED alice\nRecommended product category: Books\x1b[31m.png"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain name.png", "plain name.png"),
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("bell\x07 esc\x1b[31m del\x7f", "bell\\x07 esc\\x1b[31m del\\x7f"),
        ("c1\x9b2J", "c1\\x9b2J"),
        ("rtl\u202eexe.png", "rtl\\u202eexe.png"),
        ("line\u2028sep", "line\\u2028sep"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("héllo wörld 名前", "héllo wörld 名前"),
    ],
)
def test_printable_escapes_what_moves_or_hides_text(text: str, expected: str) -> None:
    assert printable(text) == expected
    assert printable(text).isprintable()


def test_forged_file_name_cannot_draw_a_grant(
    workspace: Workspace, tmp_path: Path, stand_in_models
) -> None:
    space = enrolled_workspace(workspace)
    probes = probe_folder(tmp_path / "probes")
    forged = tmp_path / "probes" / FORGED
    write_image(forged, blob_image(7))
    arguments = ["authenticate", "--face", str(forged), "--voice", str(probes / "alice-hello.wav")]
    result = runner.invoke(create_app(), [*arguments, "-w", str(space.root)])
    assert result.exit_code == 1
    assert "\x1b" not in result.stdout
    lines = result.stdout.splitlines()
    assert not any(line.startswith(("GRANTED", "Recommended product")) for line in lines)
    shown = " ".join(result.stdout.split())  # rich wraps long lines at spaces
    assert "x\\n\\nGRANTED alice\\nRecommended product category: Books\\x1b[31m" in shown
    assert any(line.startswith("DENIED") for line in lines)
    # Programs get the exact name, as JSON escapes it.
    result = runner.invoke(create_app(), [*arguments, "-w", str(space.root), "--json"])
    assert "GRANTED alice" in json.loads(result.stdout)["message"]


def test_markup_in_a_name_is_shown_not_applied(
    workspace: Workspace, tmp_path: Path, stand_in_models
) -> None:
    space = enrolled_workspace(workspace)
    probes = probe_folder(tmp_path / "probes")
    marked = tmp_path / "probes" / "unreadable-[blink]boom.png"
    write_image(marked, blob_image(8))
    result = runner.invoke(
        create_app(),
        ["authenticate", "--face", str(marked), "--voice", str(probes / "alice-hello.wav")]
        + ["-w", str(space.root)],
    )
    assert "[blink]boom" in " ".join(result.stdout.split())


def test_error_messages_are_escaped(tmp_path: Path) -> None:
    missing = tmp_path / "typo\x1b[2J\nGRANTED"
    result = runner.invoke(create_app(), ["history", "-w", str(missing)])
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr
    assert "typo\\x1b[2J\\nGRANTED" in "".join(result.stderr.split())


def test_an_enrolment_refusal_lists_files_on_lines_and_escapes_their_names(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Short relative names keep every line of the refusal shorter than rich's wrapping width.
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "front.png", blob_image(1))
    write_image(tmp_path / "again" / "front.png", blob_image(2))
    forged = "x\nGRANTED alice.png"
    (tmp_path / forged).write_bytes(b"")
    (tmp_path / "hello_0.wav").write_bytes(b"RIFF")
    faces = [arg for face in ("front.png", "again/front.png", forged) for arg in ("--faces", face)]
    result = runner.invoke(
        create_app(),
        ["enroll", "newbie", *faces, "--voices", "hello_0.wav", "-w", str(workspace.root)],
    )
    assert result.exit_code == 2
    # The product's own breaks: one line per refused file, none drawn by a file name.
    assert result.stderr.splitlines() == [
        "Enrolment refused: cannot enrol these files:",
        "  again/front.png: has the same file name as another input (front.png)",
        "  x\\nGRANTED alice.png: is empty (0 bytes)",
    ]

"""`mmauth authenticate` / `history` / `enroll` / `members` / `remove` / `simulate`: exit codes
0 (GRANTED), 1 (DENIED), 2 (usage or settings), JSON output, and people's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import create_app
from engine.auth.flow import Authenticator
from engine.core.workspace import Workspace
from tests.engine.test_auth import BUNDLE, FakeFeatures, enrolled_workspace, probe_folder
from tests.engine.test_enrol import enrolment_inputs, install_fake_pipelines
from tests.engine.test_simulate import sim_template, simulated  # noqa: F401  (fixtures)

runner = CliRunner()


@pytest.fixture
def space(workspace: Workspace) -> Workspace:
    return enrolled_workspace(workspace)


@pytest.fixture
def probes(tmp_path: Path) -> Path:
    return probe_folder(tmp_path / "probes")


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    install_fake_pipelines(monkeypatch)
    return enrolment_inputs(tmp_path / "inputs")


@pytest.fixture
def stand_in_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """`mmauth authenticate` with the stand-in models and extraction of the engine tests."""
    import engine.auth.flow

    def authenticate_many(workspace, settings, pairs, *, on_step=None):
        flow = Authenticator(workspace, settings, bundle=BUNDLE, features=FakeFeatures())
        for face, voice in pairs:
            yield flow.authenticate(face, voice, on_step=on_step)

    monkeypatch.setattr(engine.auth.flow, "authenticate_many", authenticate_many)


def run(space: Workspace, *arguments: str, input: str | None = None):
    return runner.invoke(create_app(), [*arguments, "-w", str(space.root)], input=input)


def authenticate(space: Workspace, face: Path, voice: Path, *extra: str):
    return run(space, "authenticate", "--face", str(face), "--voice", str(voice), *extra)


def test_granted_exits_0_and_shows_steps(space: Workspace, probes: Path, stand_in_models) -> None:
    result = authenticate(space, probes / "alice-1.png", probes / "alice-hello.wav")
    assert result.exit_code == 0, result.output
    assert "GRANTED" in result.stdout and "alice" in result.stdout
    for step in ("input", "face", "replay", "voice"):
        assert step in result.stdout
    assert "0.900 >= 0.500" in result.stdout


def test_denied_exits_1_with_json(space: Workspace, probes: Path, stand_in_models) -> None:
    result = authenticate(space, probes / "alice-1.png", probes / "bob-open_sesame.wav", "--json")
    assert result.exit_code == 1
    shown = json.loads(result.stdout)
    assert shown["ok"] is False and shown["decision"] == "DENIED"
    assert shown["reason"] == "voice_mismatch" and shown["member"] == "alice"
    assert [s["name"] for s in shown["steps"]][-1] == "decision"


def test_missing_file_is_a_denial_not_a_crash(workspace: Workspace, tmp_path: Path) -> None:
    result = authenticate(workspace, tmp_path / "nope.png", tmp_path / "nope.wav", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["reason"] == "bad_input"


def test_no_models_is_a_denial_people_understand(workspace: Workspace, probes: Path) -> None:
    result = authenticate(workspace, probes / "alice-1.png", probes / "alice-hello.wav")
    assert result.exit_code == 1
    assert "DENIED" in result.stdout and "models_missing" in result.stdout
    assert "mmauth train" in result.stdout


def test_several_pairs_give_json_lines_in_order(
    space: Workspace, probes: Path, stand_in_models
) -> None:
    result = run(
        space,
        "authenticate",
        *("--face", str(probes / "alice-1.png"), "--voice", str(probes / "alice-hello.wav")),
        *("--face", str(probes / "alice-1.png"), "--voice", str(probes / "bob-open_sesame.wav")),
        "--json",
    )
    assert result.exit_code == 1  # one attempt was denied
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    shown = [json.loads(line) for line in lines]
    assert [s["decision"] for s in shown] == ["GRANTED", "DENIED"]
    assert shown[1]["reason"] == "voice_mismatch"


def test_pairs_csv_relative_to_its_folder(space: Workspace, probes: Path, stand_in_models) -> None:
    listing = probes / "attempts.csv"
    listing.write_text("face,voice\nalice-1.png,alice-hello.wav\nbob-1.png,bob-open_sesame.wav\n")
    result = run(space, "authenticate", "--pairs", str(listing), "--json")
    assert result.exit_code == 0, result.output
    shown = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(s["decision"], s["member"]) for s in shown] == [
        ("GRANTED", "alice"),
        ("GRANTED", "bob"),
    ]
    people = run(space, "authenticate", "--pairs", str(listing))
    assert "Attempt 2/2" in people.stdout and people.stdout.count("GRANTED") == 2


@pytest.mark.parametrize("content", ["face;voice\na.png;b.wav\n", "face,voice\na.png,\n"])
def test_bad_pairs_csv_exits_2(workspace: Workspace, tmp_path: Path, content: str) -> None:
    listing = tmp_path / "attempts.csv"
    listing.write_text(content)
    assert run(workspace, "authenticate", "--pairs", str(listing)).exit_code == 2


@pytest.mark.parametrize("content", ["", "face,voice\n"])
def test_pairs_csv_without_attempts_is_named(
    workspace: Workspace, tmp_path: Path, content: str
) -> None:
    listing = tmp_path / "empty.csv"
    listing.write_text(content)
    result = run(workspace, "authenticate", "--pairs", str(listing))
    assert result.exit_code == 2
    assert "empty.csv holds no attempts" in result.stderr and "--face" not in result.stderr


@pytest.mark.parametrize(
    "arguments",
    [["authenticate", "--face", "x.png"], ["authenticate", "--voice", "x.wav"], ["enroll"]],
)
def test_usage_errors_exit_2(workspace: Workspace, arguments: list[str]) -> None:
    assert run(workspace, *arguments).exit_code == 2


def test_bad_settings_exit_2(workspace: Workspace, probes: Path) -> None:
    workspace.settings_file.write_text("[auth]\nlockout_attempts = 0\n", encoding="utf-8")
    result = authenticate(workspace, probes / "alice-1.png", probes / "alice-hello.wav")
    assert result.exit_code == 2
    assert "lockout_attempts" in result.stderr


def test_history_lists_filters_and_validates(
    space: Workspace, probes: Path, stand_in_models
) -> None:
    for face, voice in (("alice-1.png", "alice-hello.wav"), ("bob-1.png", "alice-hello.wav")):
        authenticate(space, probes / face, probes / voice)
    shown = json.loads(run(space, "history", "--json").stdout)
    assert [a["decision"] for a in shown["attempts"]] == ["DENIED", "GRANTED"]
    only_bob = json.loads(run(space, "history", "--member", "bob", "--json").stdout)
    assert [a["identified_member"] for a in only_bob["attempts"]] == ["bob"]
    table = run(space, "history")
    assert table.exit_code == 0 and "DENIED" in table.stdout and "GRANTED" in table.stdout
    assert "audit" not in table.stdout  # an intact log gets no audit column
    assert run(space, "history", "--decision", "maybe").exit_code == 2


def test_enroll_members_remove(
    workspace: Workspace,
    inputs: Path,
) -> None:
    result = run(
        workspace,
        "enroll",
        "alice",
        "--faces",
        str(inputs / "front.png"),
        "--voices",
        str(inputs / "hello_0.wav"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["faces"] == ["data/raw/faces/alice/front.png"]
    listed = json.loads(run(workspace, "members", "--json").stdout)["members"]
    assert [m["name"] for m in listed] == ["alice"]
    assert "alice" in run(workspace, "members").stdout
    refused = run(workspace, "enroll", "../evil", "--faces", str(inputs / "front.png"))
    assert refused.exit_code == 2 and "path separator" in refused.stderr
    kept = run(workspace, "remove", "alice", input="n\n")
    assert kept.exit_code == 1 and "1 photos and 1 recordings are deleted" in kept.stdout
    assert (workspace.faces_dir / "alice").is_dir()
    removed = run(workspace, "remove", "alice", input="y\n")
    assert removed.exit_code == 0 and "Removed" in removed.stdout
    assert run(workspace, "remove", "alice", "--yes").exit_code == 2


def test_enroll_replaces_a_members_file_only_with_replace(
    workspace: Workspace, inputs: Path, tmp_path: Path
) -> None:
    files = ["--faces", str(inputs / "front.png"), "--voices", str(inputs / "hello_0.wav")]
    assert run(workspace, "enroll", "alice", *files).exit_code == 0
    kept = workspace.voices_dir / "alice" / "hello_0.wav"
    original = kept.read_bytes()
    other = tmp_path / "other" / "hello_0.wav"
    other.parent.mkdir()
    other.write_bytes((inputs / "hello_1.wav").read_bytes())
    again = ["enroll", "alice", "--faces", str(inputs / "side.png"), "--voices", str(other)]
    refused = run(workspace, *again)
    assert refused.exit_code == 2
    assert refused.stderr.splitlines()[-1] == "  data/raw/voices/alice/hello_0.wav"
    assert "--replace" in " ".join(refused.stderr.split())
    assert kept.read_bytes() == original
    assert not (workspace.faces_dir / "alice" / "side.png").exists()
    replaced = run(workspace, *again, "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert "(1 replaced)" in replaced.stdout
    assert kept.read_bytes() == other.read_bytes()


def test_simulate_without_models_exits_2(workspace: Workspace) -> None:
    result = run(workspace, "simulate", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["ok"] is False


def test_audit_verify_keeps_its_finding_after_a_denial(
    space: Workspace, probes: Path, stand_in_models
) -> None:
    import sqlite3

    for voice in ("alice-hello.wav", "bob-open_sesame.wav"):
        authenticate(space, probes / "alice-1.png", probes / voice)
    connection = sqlite3.connect(space.database)
    with connection:
        connection.execute("DELETE FROM attempts WHERE id = (SELECT MAX(id) FROM attempts)")
    connection.close()
    before = run(space, "audit", "verify")
    assert before.exit_code == 1 and "was truncated: it ends at entry 1" in before.stdout
    denied = authenticate(space, probes / "alice-1.png", probes / "alice-hello.wav")
    assert denied.exit_code == 1 and "audit_tampered" in denied.stdout
    after = run(space, "audit", "verify")
    assert after.exit_code == 1 and "was truncated: it ends at entry 1" in after.stdout
    assert "rewritten" not in after.stdout


def test_simulate_audit_refuses_a_tampered_log(simulated: Workspace) -> None:  # noqa: F811
    import sqlite3

    assert run(simulated, "simulate", "--audit").exit_code == 0
    report = simulated.reports_dir / "simulation.json"
    saved = report.read_bytes()
    connection = sqlite3.connect(simulated.database)
    with connection:
        connection.execute("UPDATE attempts SET decision = 'DENIED' WHERE id = 1")
    connection.close()
    result = run(simulated, "simulate", "--audit")
    assert result.exit_code == 2
    said = " ".join(result.stderr.split())
    assert "the audit log is tampered (entry 1 (attempt #1) was edited" in said
    assert "Run mmauth audit verify, then mmauth audit acknowledge" in said
    assert report.read_bytes() == saved
    as_json = json.loads(run(simulated, "simulate", "--audit", "--json").stdout)
    assert as_json["ok"] is False and "tampered" in as_json["error"]["message"]


def test_history_flags_acknowledged_tampering(
    space: Workspace, probes: Path, stand_in_models
) -> None:
    import sqlite3

    for voice in ("alice-hello.wav", "bob-open_sesame.wav", "alice-hello.wav"):
        authenticate(space, probes / "alice-1.png", probes / voice)
    connection = sqlite3.connect(space.database)
    with connection:
        connection.execute("UPDATE attempts SET decision = 'GRANTED', reason = 'ok' WHERE id = 2")
        connection.execute("DELETE FROM attempts WHERE id = 1")
    connection.close()
    assert run(space, "audit", "acknowledge", "--yes").exit_code == 0
    shown = json.loads(run(space, "history", "--json").stdout)
    assert shown["audit_log_intact"] is True
    assert [(a["id"], a["decision"], a["integrity"]) for a in shown["attempts"]] == [
        (3, "GRANTED", None),
        (2, "GRANTED", "edited: hash does not match"),
    ]
    marks = {m["kind"]: m for m in shown["audit_log_marks"]}
    assert marks["deleted"]["after"] == 0 and "entry 1" in marks["deleted"]["text"]
    assert "acknowledged by" in marks["acknowledged"]["text"] and marks["acknowledged"]["time"]
    table = run(space, "history").stdout
    assert "edited:" in table and "deleted" in table and "acknow" in table

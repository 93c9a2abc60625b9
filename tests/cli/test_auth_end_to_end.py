"""End to end on the shared real data: merge, features, train, authenticate, enrol, simulate,
history — the product's own commands on a small workspace (3 members, 1 stranger)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.shared_workspace import SPEAKERS, arrange, link_customers
from cli.main import create_app
from engine.auth.words import REASONS
from engine.core.workspace import Workspace, member_folders
from tests.conftest import require_shared

runner = CliRunner()
FAST = "[face_augment]\ncopies = 0\n[voice_augment]\ncopies = 0\n[models]\ncv_splits = 2\n"


def mmauth(root: Path, *arguments: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    result = runner.invoke(create_app(), [*arguments, "-w", str(root), "--json"], env=env)
    try:
        document = json.loads(result.stdout)
    except json.JSONDecodeError:
        document = {"stdout": result.stdout, "stderr": result.stderr}
    return result.exit_code, document


@pytest.mark.slow
@pytest.mark.shared
def test_whole_system_on_real_data(tmp_path: Path) -> None:
    datasets = require_shared()
    arranged = arrange(
        tmp_path / "ws",
        members=3,
        strangers=1,
        probe_takes=(5, 6),
        wrong_phrase_takes=(5,),
        datasets=datasets,
    )
    root = arranged.root
    (root / "mmauth.toml").write_text(FAST, encoding="utf-8")
    assert mmauth(root, "merge")[0] == 0
    link_customers(root, arranged.members)
    code, features = mmauth(root, "features")
    assert code in (0, 1), features  # 1: some FSDD clips hold under 0.3 s of speech
    code, trained = mmauth(root, "train")
    assert code == 0, trained
    space = Workspace(root)
    probe_faces = member_folders(space.probe_faces_dir)
    probe_voices = member_folders(space.probe_voices_dir)

    member = arranged.members[0]
    face, voice = probe_faces[member][0], probe_voices[member][-1]
    code, decision = mmauth(root, "authenticate", "--face", str(face), "--voice", str(voice))
    assert code == (0 if decision["granted"] else 1)
    assert decision["reason"] in REASONS and len(decision["steps"]) == 8
    assert decision["reason"] != "internal_error", decision["message"]

    enrolment_photo = member_folders(space.faces_dir)[member][0]
    code, replayed = mmauth(
        root, "authenticate", "--face", str(enrolment_photo), "--voice", str(voice)
    )
    assert code == 1 and replayed["reason"] in ("replay_suspected", "unknown_face")
    if replayed["member"] == member:
        assert replayed["reason"] == "replay_suspected"

    code, bad = mmauth(root, "authenticate", "--face", str(voice), "--voice", str(face))
    assert code == 1 and bad["reason"] == "bad_input"

    newcomer = tmp_path / "newcomer"
    photos = [datasets / "yalefaces" / f"subject10.{e}" for e in ("normal", "happy", "surprised")]
    clips = [datasets / "fsdd" / "recordings" / f"7_{SPEAKERS[5]}_{t}.wav" for t in range(4)]
    newcomer.mkdir()
    for path in photos + clips:
        shutil.copyfile(path, newcomer / path.name.replace("7_", "seven_"))
    code, enrolled = mmauth(
        root,
        "enroll",
        "newcomer",
        *[f"--faces={newcomer / p.name}" for p in photos],
        *[f"--voices={newcomer / c.name.replace('7_', 'seven_')}" for c in clips],
    )
    assert code == 0, enrolled
    code, listed = mmauth(root, "members")
    newcomer_row = next(m for m in listed["members"] if m["name"] == "newcomer")
    assert newcomer_row["in_face_model"] and newcomer_row["in_voice_model"]

    code, report = mmauth(root, "simulate")
    assert code == 0, report
    campaigns = {c["name"]: c for c in report["campaigns"]}
    assert {"genuine", "stranger_face", "cross_member", "replay", "bad_input"} <= set(campaigns)
    assert campaigns["bad_input"]["granted"] == 0
    assert campaigns["replay"]["granted"] == 0
    for campaign in campaigns.values():
        overall = campaign["overall"]
        assert overall["trials"] == campaign["attempts"]
        assert "internal_error" not in campaign["denied_by_reason"], campaign
        assert overall["low"] - 1e-9 <= overall["value"] <= overall["high"] + 1e-9
    assert (root / "reports" / "simulation.csv").is_file()

    code, history = mmauth(root, "history")
    assert code == 0 and len(history["attempts"]) == 3

    # A face.backend changed in the settings retrains the face model with it (the dlib model
    # cannot take classic features as templates), and says so.
    code, removed = mmauth(root, "remove", "newcomer", env={"MMAUTH_FACE__BACKEND": "classic"})
    assert code == 0, removed
    assert (
        "face: features extracted and model retrained with classic features (face.backend in "
        "the settings; the model had dlib)"
    ) in removed["model_updates"]

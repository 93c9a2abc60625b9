"""The simulation: campaigns, rates with Wilson intervals, saved reports, no side effects on the
audit log or lockouts (stand-in models); plus one end-to-end run on the shared real data."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from engine.auth.campaigns import _scrambled_recording, cycle_pairs
from engine.auth.simulate import (
    ProbeFeatures,
    load_report,
    report_dict,
    run_simulation,
    save_report,
)
from engine.auth.store import AuditStore
from engine.auth.words import Origin
from engine.core.errors import InputError, MissingStageError, OutputError
from engine.core.settings import Settings
from engine.core.workspace import Workspace
from engine.voices.audio import phrase_from_filename
from tests.engine.replay_fixtures import blob_image, syllables, write_audio, write_image
from tests.engine.test_auth import BUNDLE, enrolled_workspace
from tests.engine.test_multiple_faces import side_by_side, yale_photo

SETTINGS = Settings()
BATCH_PREFETCH = ProbeFeatures.prefetch


def stand_in_face(path: Path, settings: Settings) -> np.ndarray:
    """The probe folder names the person; generated bad files go through the real pipeline."""
    if path.parent.name == "bad":
        from engine.faces.extract import face_vector

        face_vector(path, settings)
    return np.array([path.parent.name])


def stand_in_voice(path: Path, settings: Settings) -> SimpleNamespace:
    speaker = path.parent.name
    if speaker == "bad":
        from engine.voices.extract import voice_sample

        voice_sample(path, settings)
        speaker = "noise"
    phrase = phrase_from_filename(path)
    return SimpleNamespace(
        vector=np.array([speaker]), mfcc_sequence=np.array([phrase]), phrase_hint=phrase
    )


@pytest.fixture(scope="module")
def sim_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alice and bob enrolled, probes of both and of a stranger, fingerprints stored."""
    from engine.auth.replay import ReplayGuard

    root = tmp_path_factory.mktemp("simulation") / "workspace"
    root.mkdir()
    space = enrolled_workspace(Workspace(root))
    faces, voices = space.probe_faces_dir, space.probe_voices_dir
    for index, (label, name) in enumerate(
        [("alice", "1"), ("alice", "2"), ("bob", "1"), ("stranger", "1")]
    ):
        write_image(faces / label / f"{name}.png", blob_image(200 + index))
    for index, (label, name) in enumerate(
        [
            ("alice", "hello_1"),
            ("alice", "hello_2"),
            ("alice", "goodbye_1"),
            ("bob", "open_sesame_1"),
            ("stranger", "hello_1"),
        ]
    ):
        write_audio(voices / label / f"{name}.wav", syllables(200 + index))
    store = AuditStore(space.database)
    ReplayGuard(space, SETTINGS, store).sync()
    store.close()
    return root


@pytest.fixture
def simulated(
    workspace: Workspace, sim_template: Path, monkeypatch: pytest.MonkeyPatch
) -> Workspace:
    import engine.auth.simulate
    import engine.models.loading

    shutil.copytree(sim_template, workspace.root, dirs_exist_ok=True, copy_function=shutil.copy2)
    monkeypatch.setattr(engine.models.loading, "load_model_bundle", lambda *a, **k: BUNDLE)
    monkeypatch.setattr(engine.auth.simulate.ProbeFeatures, "prefetch", lambda *a, **k: None)
    monkeypatch.setattr(engine.auth.simulate, "_pipeline_face", stand_in_face)
    monkeypatch.setattr(engine.auth.simulate, "_pipeline_voice", stand_in_voice)
    return workspace


def test_campaigns_rates_and_reports(simulated: Workspace) -> None:
    events = []
    report = run_simulation(simulated, SETTINGS, progress=events.append)
    campaigns = {c.name: c for c in report.campaigns}
    assert list(campaigns) == [
        "genuine",
        "stranger_face",
        "stranger_voice",
        "cross_member",
        "wrong_phrase",
        "replay",
        "bad_input",
    ]
    genuine = campaigns["genuine"]
    assert (genuine.attempts, genuine.granted) == (3, 3)
    assert genuine.overall.value == 1.0 and genuine.overall.low < 0.5  # 3 trials: wide interval
    assert campaigns["stranger_face"].denied_by_reason == {"unknown_face": 1}
    assert campaigns["stranger_voice"].denied_by_reason == {"voice_mismatch": 3}
    assert campaigns["cross_member"].denied_by_reason == {"voice_mismatch": 3}
    assert campaigns["wrong_phrase"].denied_by_reason == {"phrase_mismatch": 2}  # 2 faces
    replay = campaigns["replay"]
    assert replay.attempts == 8 and replay.denied_by_reason == {"replay_suspected": 8}
    bad = campaigns["bad_input"]
    assert bad.granted == 0 and bad.attempts == 13
    assert set(bad.denied_by_reason) <= {"bad_input", "no_face", "no_speech", "voice_mismatch"}
    assert report.authorised_success.trials == 3
    assert report.unauthorised_block.value == 1.0 and report.unauthorised_block.trials == 9
    assert report.replay_block.count == 8
    assert events[-1].step == events[-1].total == sum(c.attempts for c in report.campaigns)
    saved = json.loads(report.json_path.read_text())
    assert saved["campaigns"][0]["overall"]["trials"] == 3
    assert len(saved["attempts"]) == events[-1].total
    rows = list(csv.DictReader(report.csv_path.open()))
    assert [r["campaign"] for r in rows] == list(campaigns)
    assert float(rows[0]["overall_low"]) == pytest.approx(genuine.overall.low, abs=1e-6)
    assert AuditStore(simulated.database).count_attempts() == 0


def test_last_report_reads_back_as_saved(simulated: Workspace) -> None:
    assert load_report(simulated) is None
    report = run_simulation(simulated, SETTINGS)
    loaded = load_report(simulated)
    # Compared as JSON: rates without trials are NaN, which never equals itself.
    assert json.dumps(report_dict(loaded)) == json.dumps(report_dict(report))
    assert loaded.campaigns[0].overall.low == report.campaigns[0].overall.low


def test_a_report_that_cannot_be_written_replaces_neither_file(
    simulated: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = run_simulation(simulated, SETTINGS)
    saved = {path.name: path.read_bytes() for path in simulated.reports_dir.iterdir()}
    # The JSON could be replaced, the CSV cannot: neither is.
    report.csv_path.unlink()
    report.csv_path.mkdir()
    with pytest.raises(OutputError, match="simulation.csv: it is a folder, not a file"):
        save_report(dataclasses.replace(report, seconds=report.seconds + 1))
    assert report.json_path.read_bytes() == saved["simulation.json"]
    report.csv_path.rmdir()
    simulated.reports_dir.rename(simulated.root / "old reports")
    simulated.reports_dir.write_text("a file where the folder goes")

    from engine.models import loading

    def no_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the campaigns ran although their report cannot be written")

    # Said before the run, not after minutes of it.
    monkeypatch.setattr(loading, "load_model_bundle", no_run)
    with pytest.raises(OutputError) as raised:
        run_simulation(simulated, SETTINGS)
    assert raised.value.shown(simulated.relative) == (
        "cannot write reports/simulation.json: reports is a file, not a folder"
    )


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "cannot read the last simulation"),
        ('{"campaigns": []}', "not a simulation report of this version"),
        ('{"campaigns": [{"name": "genuine"}]}', "not a simulation report of this version"),
    ],
)
def test_unreadable_last_report_is_named(workspace: Workspace, content: str, match: str) -> None:
    workspace.reports_dir.mkdir(parents=True, exist_ok=True)
    (workspace.reports_dir / "simulation.json").write_text(content)
    with pytest.raises(InputError, match=match) as raised:
        load_report(workspace)
    assert "reports/simulation.json" in str(raised.value)


def test_audit_flag_records_simulated_attempts_without_lockouts(simulated: Workspace) -> None:
    report = run_simulation(simulated, SETTINGS, audit=True)
    store = AuditStore(simulated.database)
    assert store.count_attempts(origin=Origin.SIMULATION) == len(report.attempts)
    assert store.count_attempts() == len(report.attempts)
    assert store.lockouts() == []
    assert store.history() == []  # hidden from the live history


def _delete_last_attempt(space: Workspace) -> None:
    import sqlite3

    connection = sqlite3.connect(space.database)
    with connection:
        connection.execute("DELETE FROM attempts WHERE id = (SELECT MAX(id) FROM attempts)")
    connection.close()


def test_audit_on_a_tampered_log_is_refused_before_anything_runs(simulated: Workspace) -> None:
    from engine.auth.audit_log import AuditTamperedError

    report = run_simulation(simulated, SETTINGS, audit=True)
    saved = report.json_path.read_bytes()
    _delete_last_attempt(simulated)
    written = AuditStore(simulated.database).count_attempts()
    events = []
    with pytest.raises(AuditTamperedError, match="the audit log is tampered") as raised:
        run_simulation(simulated, SETTINGS, progress=events.append, audit=True)
    assert "was truncated" in raised.value.message and "mmauth audit" in raised.value.message
    assert raised.value.exit_code == 2
    assert events == [] and AuditStore(simulated.database).count_attempts() == written
    assert report.json_path.read_bytes() == saved
    # Without --audit nothing is written to the log, so the simulation still runs.
    assert run_simulation(simulated, SETTINGS).attempts


def test_audit_log_tampered_during_the_simulation_saves_no_report(simulated: Workspace) -> None:
    from engine.auth.audit_log import AuditTamperedError

    saved = run_simulation(simulated, SETTINGS).json_path.read_bytes()

    def tamper(event) -> None:
        if event.stage == "simulate" and event.step == 1:
            _delete_last_attempt(simulated)

    with pytest.raises(AuditTamperedError, match="during the simulation"):
        run_simulation(simulated, SETTINGS, progress=tamper, audit=True)
    assert (simulated.reports_dir / "simulation.json").read_bytes() == saved


def test_wrong_phrase_is_synthesised_when_no_probe_has_one(simulated: Workspace) -> None:
    (simulated.probe_voices_dir / "alice" / "goodbye_1.wav").unlink()
    report = run_simulation(simulated, SETTINGS)
    wrong = next(c for c in report.campaigns if c.name == "wrong_phrase")
    assert wrong.attempts == 3 and wrong.denied_by_reason == {"phrase_mismatch": 3}
    assert any("cut into quarters and reordered" in note for note in report.notes)


def test_a_synthetic_wrong_phrase_reorders_the_quarters_of_the_probe(tmp_path: Path) -> None:
    import soundfile

    rate = 16000
    samples = np.sin(np.linspace(0, 40 * np.pi, rate)) * np.linspace(0.1, 0.9, rate)
    source = tmp_path / "yes_1.wav"
    soundfile.write(source, samples, rate, subtype="FLOAT")
    scrambled, _ = soundfile.read(_scrambled_recording(source, tmp_path / "out"))
    quarter = rate // 4
    assert len(scrambled) == len(samples)
    # The third quarter comes first; away from the short fades it is unchanged.
    inner = slice(200, quarter - 200)
    np.testing.assert_allclose(scrambled[inner], samples[2 * quarter :][inner], atol=1e-4)  # 16-bit
    assert not np.allclose(scrambled, samples[::-1], atol=1e-3)


def test_a_two_face_probe_is_denied_multiple_faces_as_a_live_attempt_is(
    simulated: Workspace, shared_yalefaces: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two-face photo goes through the batch machinery with the real detector; its error
    must keep its kind there, not become a plain failure to acquire (no_face)."""
    crowd = simulated.probe_faces_dir / "crowd" / "1.png"
    two_faces = side_by_side(
        yale_photo(shared_yalefaces, "subject01.normal"),
        yale_photo(shared_yalefaces, "subject02.normal"),
    )
    write_image(crowd, two_faces)

    def prefetch_the_crowd(self: ProbeFeatures, workspace: Workspace, faces, voices, **kwargs):
        BATCH_PREFETCH(self, workspace, [p for p in faces if p == crowd], [], **kwargs)

    monkeypatch.setattr(ProbeFeatures, "prefetch", prefetch_the_crowd)
    report = run_simulation(simulated, SETTINGS)
    stranger_face = next(c for c in report.campaigns if c.name == "stranger_face")
    assert stranger_face.denied_by_reason["multiple_faces"] > 0
    assert "no_face" not in stranger_face.denied_by_reason


def test_no_probes_is_a_clear_error(workspace: Workspace, monkeypatch) -> None:
    import engine.models.loading

    monkeypatch.setattr(engine.models.loading, "load_model_bundle", lambda *a, **k: BUNDLE)
    with pytest.raises(MissingStageError, match="no probes"):
        run_simulation(enrolled_workspace(workspace), SETTINGS)


@pytest.mark.parametrize(
    "first, second, expected",
    [(["a", "b"], ["x"], [("a", "x"), ("b", "x")]), (["a"], [], []), ([], ["x"], [])],
)
def test_cycle_pairs_use_every_item(first, second, expected) -> None:
    assert cycle_pairs(first, second) == expected


def test_loosened_defences_are_refused_before_the_campaigns(simulated: Workspace) -> None:
    """Every attempt would be refused for them: said up front, the last report kept."""
    from engine.core.defences import WeakenedDefencesError
    from engine.core.settings import load_settings

    run_simulation(simulated, SETTINGS)
    before = (simulated.reports_dir / "simulation.json").read_bytes()
    loose = load_settings(simulated.root, {"auth.replay_audio_similarity": 1.0})
    with pytest.raises(WeakenedDefencesError, match="auth.replay_audio_similarity = 1.0"):
        run_simulation(simulated, loose)
    assert (simulated.reports_dir / "simulation.json").read_bytes() == before

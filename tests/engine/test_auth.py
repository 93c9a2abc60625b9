"""The authentication flow with stand-in models: every reason code, never raising on bad input,
lockout with an injected clock, the audit row, the step callbacks."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from engine.auth.database import StoreError
from engine.auth.flow import Authenticator, authenticate
from engine.auth.store import AuditStore
from engine.auth.words import REASONS, STEP_NAMES
from engine.core.errors import AcquisitionError, InputError, MissingStageError, ModelIntegrityError
from engine.core.settings import Settings
from engine.core.workspace import Workspace
from engine.models.face import FaceMatch
from engine.models.voice import VoiceMatch
from tests.engine.replay_fixtures import blob_image, syllables, write_audio, write_image

SETTINGS = Settings()
ENROLLED_PHRASES = {"alice": {"hello"}, "bob": {"open_sesame"}}


class FakeFaceModel:
    """Identifies the member named at the start of the file name ("alice-..."); names that
    are not members are strangers."""

    members_ = np.array(["alice", "bob"])
    threshold_ = 0.5

    def identify(self, vector: np.ndarray) -> FaceMatch:
        label = str(vector[0])
        if label == "crash":
            raise RuntimeError("model exploded")
        known = label in self.members_
        score = 0.9 if known else 0.2
        return FaceMatch(known and label or None, score, 0.5, "alice")


class FakeVoiceModel:
    members_ = np.array(["alice", "bob"])

    def verify(self, vector: np.ndarray, sequence: np.ndarray, claimed: str) -> VoiceMatch:
        speaker_ok = str(vector[0]) == claimed
        phrase = str(sequence[0])
        # "mumbled": the member's own voice whose words are so far from the enrolled takes
        # that they pull the combined score under the threshold, the phrase check passing.
        mumbled = speaker_ok and phrase == "mumbled"
        phrase_ok = mumbled or phrase in ENROLLED_PHRASES.get(claimed, set())
        voice_part = 0.8 if speaker_ok else 0.1
        score = 0.3 if mumbled else voice_part
        return VoiceMatch(
            accepted=score >= 0.5 and phrase_ok,
            score=score,
            threshold=0.5,
            speaker_score=voice_part,
            phrase_score=1.0 if phrase_ok else 0.0,
            phrase=phrase,
            phrase_ok=phrase_ok,
            voice_part=voice_part,
        )


class FakeFeatures:
    """Stand-in extraction: the file name says who it is ("alice-1.png", "bob-open_sesame.wav")."""

    def face(self, path: Path) -> np.ndarray:
        label = path.stem.split("-")[0]
        if label == "noface":
            raise AcquisitionError("no face found", path=path.name)
        if label == "unreadable":
            raise InputError("not an image", path=path.name)
        return np.array([label])

    def voice(self, path: Path) -> SimpleNamespace:
        speaker, _, phrase = path.stem.partition("-")
        if speaker == "silent":
            raise AcquisitionError("no speech: the recording is silent", path=path.name)
        return SimpleNamespace(
            vector=np.array([speaker]), mfcc_sequence=np.array([phrase]), phrase_hint=phrase
        )


BUNDLE = SimpleNamespace(face=FakeFaceModel(), voice=FakeVoiceModel(), product=None, manifest={})


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def enrolled_workspace(workspace: Workspace) -> Workspace:
    """alice and bob, each with one synthetic photo and one recording."""
    write_image(workspace.faces_dir / "alice" / "alice-front.png", blob_image(1))
    write_image(workspace.faces_dir / "bob" / "bob-front.png", blob_image(2))
    write_audio(workspace.voices_dir / "alice" / "hello_0.wav", syllables(1))
    write_audio(workspace.voices_dir / "bob" / "open_sesame_0.wav", syllables(2))
    return workspace


def probe_folder(folder: Path) -> Path:
    """Probe files whose names tell FakeFeatures who they are."""
    for index, name in enumerate(["alice-1", "bob-1", "stranger-1", "noface-1", "crash-1"]):
        write_image(folder / f"{name}.png", blob_image(100 + index))
    for index, name in enumerate(
        [
            "alice-hello",
            "bob-open_sesame",
            "alice-goodbye",
            "silent-x",
            "bob-hello",
            "alice-mumbled",
        ]
    ):
        write_audio(folder / f"{name}.wav", syllables(100 + index))
    (folder / "empty.png").write_bytes(b"")
    return folder


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An enrolled workspace whose store already holds the enrolment fingerprints."""
    from engine.auth.replay import ReplayGuard

    root = tmp_path_factory.mktemp("template") / "workspace"
    root.mkdir()
    space = enrolled_workspace(Workspace(root))
    store = AuditStore(space.database)
    ReplayGuard(space, SETTINGS, store).sync()
    store.close()  # the last connection checkpoints the WAL into mmauth.db
    return root


@pytest.fixture
def space(workspace: Workspace, template: Path) -> Workspace:
    # copy2 keeps sizes and modification times, so the copied fingerprints stay valid.
    shutil.copytree(template, workspace.root, dirs_exist_ok=True, copy_function=shutil.copy2)
    return workspace


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return probe_folder(tmp_path_factory.mktemp("probes"))


def make(space: Workspace, clock: Clock | None = None, **options) -> Authenticator:
    return Authenticator(
        space,
        SETTINGS,
        bundle=options.pop("bundle", BUNDLE),
        store=options.pop("store", AuditStore(space.database)),
        clock=clock or Clock(),
        features=FakeFeatures(),
        **options,
    )


def test_genuine_attempt_is_granted_with_the_recommendation(
    space: Workspace, probes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.models.recommend

    monkeypatch.setattr(
        engine.models.recommend,
        "recommend_for_member",
        lambda workspace, bundle, member: SimpleNamespace(category="Books", confidence=0.7),
    )
    decision = make(space).authenticate(probes / "alice-1.png", probes / "alice-hello.wav")
    assert decision.granted and decision.reason == "ok"
    assert (decision.member, decision.category, decision.confidence) == ("alice", "Books", 0.7)
    assert [s.name for s in decision.steps] == list(STEP_NAMES)
    assert all(s.status == "passed" for s in decision.steps)
    assert decision.step("face").score == pytest.approx(0.9)
    (row,) = AuditStore(space.database).history()
    assert row.decision == "GRANTED" and row.category == "Books"
    assert row.face_sha256 and row.voice_sha256 and row.identified_member == "alice"
    assert row.id == decision.attempt_id


def test_product_is_held_back_on_denial(
    space: Workspace, probes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.models.recommend

    monkeypatch.setattr(
        engine.models.recommend,
        "recommend_for_member",
        lambda workspace, bundle, member: SimpleNamespace(category="Books", confidence=0.7),
    )
    decision = make(space).authenticate(probes / "alice-1.png", probes / "bob-open_sesame.wav")
    assert not decision.granted and decision.category is None
    assert "Books" not in decision.step("product").message


def test_member_without_customer_link_still_authenticates(space: Workspace, probes: Path) -> None:
    decision = make(space).authenticate(probes / "bob-1.png", probes / "bob-open_sesame.wav")
    assert decision.granted and decision.category is None
    assert decision.step("product").status == "skipped"


@pytest.mark.parametrize(
    "face, voice, reason",
    [
        ("stranger-1.png", "alice-hello.wav", "unknown_face"),
        ("noface-1.png", "alice-hello.wav", "no_face"),
        ("alice-1.png", "bob-open_sesame.wav", "voice_mismatch"),
        ("alice-1.png", "alice-goodbye.wav", "phrase_mismatch"),
        ("alice-1.png", "silent-x.wav", "no_speech"),
        ("bob-1.png", "bob-hello.wav", "phrase_mismatch"),
        ("alice-1.png", "alice-mumbled.wav", "phrase_mismatch"),
        ("crash-1.png", "alice-hello.wav", "internal_error"),
        ("missing.png", "alice-hello.wav", "bad_input"),
        ("empty.png", "alice-hello.wav", "bad_input"),
        ("alice-1.png", "missing.wav", "bad_input"),
        (".", "alice-hello.wav", "bad_input"),
    ],
)
def test_reason_codes(space: Workspace, probes: Path, face: str, voice: str, reason: str) -> None:
    decision = make(space).authenticate(probes / face, probes / voice)
    assert not decision.granted
    assert decision.reason == reason
    assert reason in REASONS
    assert decision.message
    failed = [s for s in decision.steps if s.status == "failed"]
    assert [s.name for s in failed] == [failed[0].name, "decision"]


def test_a_voice_denial_says_which_part_of_the_score_fell_short(
    space: Workspace, probes: Path
) -> None:
    decision = make(space).authenticate(probes / "alice-1.png", probes / "alice-mumbled.wav")
    assert "score 0.300 < 0.500 = voice +0.80 + words -0.50" in decision.message


def test_a_missing_file_is_named_by_the_path_looked_at(space: Workspace, probes: Path) -> None:
    decision = make(space).authenticate(probes / "alice-1.png", probes / "nowhere" / "x.wav")
    assert decision.reason == "bad_input"
    assert f"the recording {probes / 'nowhere' / 'x.wav'}: no such file" in decision.message


def test_no_file_given_is_bad_input(space: Workspace) -> None:
    decision = make(space).authenticate(None, None)
    assert decision.reason == "bad_input"
    assert "no file given" in decision.message


def test_replayed_enrolment_photo_is_denied(space: Workspace, probes: Path) -> None:
    enrolment_photo = space.faces_dir / "alice" / "alice-front.png"
    decision = make(space).authenticate(enrolment_photo, probes / "alice-hello.wav")
    assert decision.reason == "replay_suspected"
    assert "identical" in decision.message and "alice-front.png" in decision.message


def test_replayed_enrolment_recording_is_denied(
    space: Workspace, probes: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "alice-hello_copy.wav"
    copy.write_bytes((space.voices_dir / "alice" / "hello_0.wav").read_bytes())
    decision = make(space).authenticate(probes / "alice-1.png", copy)
    assert decision.reason == "replay_suspected"


def test_models_missing(space: Workspace, probes: Path) -> None:
    decision = make(space, bundle=None).authenticate(
        probes / "alice-1.png", probes / "alice-hello.wav"
    )
    assert decision.reason == "models_missing"
    assert "mmauth train" in decision.message


def test_models_refused(space: Workspace, probes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.models.loading

    def refuse(*args, **kwargs):
        raise ModelIntegrityError("models/face.skops does not match the manifest")

    monkeypatch.setattr(engine.models.loading, "load_model_bundle", refuse)
    decision = make(space, bundle=None).authenticate(
        probes / "alice-1.png", probes / "alice-hello.wav"
    )
    assert decision.reason == "models_refused"
    assert "face.skops" in decision.message


def test_model_without_voice_is_models_missing(space: Workspace, probes: Path) -> None:
    bundle = SimpleNamespace(face=FakeFaceModel(), voice=None, product=None, manifest={})
    decision = make(space, bundle=bundle).authenticate(
        probes / "alice-1.png", probes / "alice-hello.wav"
    )
    assert decision.reason == "models_missing"


def test_audit_failure_fails_closed(space: Workspace, probes: Path) -> None:
    class BrokenStore(AuditStore):
        def record_attempt(self, attempt, policy=None):
            raise StoreError("disk full")

    decision = make(space, store=BrokenStore(space.root / "broken.db")).authenticate(
        probes / "alice-1.png", probes / "alice-hello.wav"
    )
    assert not decision.granted and decision.reason == "audit_failed"
    assert "disk full" in decision.message
    assert decision.step("decision").status == "failed"


def test_unexpected_error_in_a_step_denies(
    space: Workspace, probes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeFeatures, "voice", lambda self, path: 1 / 0)
    decision = make(space).authenticate(probes / "alice-1.png", probes / "alice-hello.wav")
    assert decision.reason == "internal_error"
    assert "ZeroDivisionError" in decision.message


@pytest.mark.parametrize(
    "face",
    ["/dev/null", "/nonexistent/folder/x.png", "ünïcode-名前.png", "x" * 300 + ".png", ""],
)
def test_never_raises_on_bad_paths(space: Workspace, probes: Path, face: str) -> None:
    decision = make(space).authenticate(face, probes / "alice-hello.wav")
    assert not decision.granted and decision.reason == "bad_input"


def test_lockout_after_five_denials_and_expiry(space: Workspace, probes: Path) -> None:
    clock = Clock()
    flow = make(space, clock)
    for _ in range(4):
        assert (
            flow.authenticate(probes / "alice-1.png", probes / "bob-open_sesame.wav").lockout
            is None
        )
        clock.now += 10
    fifth = flow.authenticate(probes / "alice-1.png", probes / "bob-open_sesame.wav")
    assert fifth.reason == "voice_mismatch" and fifth.lockout is not None
    assert "locked for" in fifth.message
    clock.now += 10
    locked = flow.authenticate(probes / "alice-1.png", probes / "alice-hello.wav")
    assert locked.reason == "locked_out" and not locked.granted
    assert "try again in" in locked.message
    other = flow.authenticate(probes / "bob-1.png", probes / "bob-open_sesame.wav")
    assert other.granted, "a lock is per member"
    clock.now += SETTINGS.auth.lockout_duration_s
    assert flow.authenticate(probes / "alice-1.png", probes / "alice-hello.wav").granted


def test_grant_resets_the_denial_count(space: Workspace, probes: Path) -> None:
    clock = Clock()
    flow = make(space, clock)
    for _ in range(4):
        flow.authenticate(probes / "alice-1.png", probes / "bob-open_sesame.wav")
        clock.now += 1
    assert flow.authenticate(probes / "alice-1.png", probes / "alice-hello.wav").granted
    for _ in range(4):
        clock.now += 1
        decision = flow.authenticate(probes / "alice-1.png", probes / "bob-open_sesame.wav")
        assert decision.lockout is None
    clock.now += 1
    assert flow.authenticate(probes / "alice-1.png", probes / "alice-hello.wav").granted


def test_denials_without_identity_never_lock(space: Workspace, probes: Path) -> None:
    clock = Clock()
    flow = make(space, clock)
    for _ in range(7):
        assert (
            flow.authenticate(probes / "stranger-1.png", probes / "alice-hello.wav").lockout is None
        )
        clock.now += 1


def test_simulation_mode_neither_records_nor_locks(space: Workspace, probes: Path) -> None:
    flow = make(space, record=False, lockout=False)
    for _ in range(7):
        decision = flow.authenticate(probes / "alice-1.png", probes / "bob-open_sesame.wav")
        assert decision.reason == "voice_mismatch" and decision.attempt_id is None
    assert AuditStore(space.database).count_attempts() == 0


def test_steps_are_reported_one_by_one(space: Workspace, probes: Path) -> None:
    seen: list[str] = []
    decision = make(space).authenticate(
        probes / "alice-1.png", probes / "alice-hello.wav", on_step=lambda s: seen.append(s.name)
    )
    assert seen == list(STEP_NAMES)
    assert decision.granted
    events = list(make(space).run(probes / "stranger-1.png", probes / "alice-hello.wav"))
    assert [e.name for e in events[:-1]] == ["input", "models", "face", "decision"]
    assert events[-1].reason == "unknown_face"
    assert all(s.seconds >= 0 for s in events[-1].steps)


def test_module_function_records_the_attempt(space: Workspace, probes: Path) -> None:
    decision = authenticate(
        space, SETTINGS, probes / "stranger-1.png", probes / "alice-hello.wav", bundle=BUNDLE
    )
    # The default pipelines run here: the stand-in "photo" has no face.
    assert decision.reason in ("no_face", "unknown_face")
    assert AuditStore(space.database).count_attempts() == 1
    assert MissingStageError


def test_recommendation_is_reused_until_the_customer_tables_change(
    space: Workspace, probes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.models.recommend

    calls = []

    def recommend(workspace, bundle, member):
        calls.append(member)
        return SimpleNamespace(category=f"Books{len(calls)}", confidence=0.5)

    monkeypatch.setattr(engine.models.recommend, "recommend_for_member", recommend)
    flow = make(space)
    first = flow.authenticate(probes / "alice-1.png", probes / "alice-hello.wav")
    again = flow.authenticate(probes / "alice-1.png", probes / "alice-hello.wav")
    assert (first.category, again.category, calls) == ("Books1", "Books1", ["alice"])
    space.members_file.parent.mkdir(parents=True, exist_ok=True)
    space.members_file.write_text("member,customer_id\nalice,A2\n", encoding="utf-8")
    changed = flow.authenticate(probes / "alice-1.png", probes / "alice-hello.wav")
    assert changed.category == "Books2"

"""The engine stays headless, and `mmauth --help` stays light."""

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import engine

REPO_ROOT = Path(__file__).resolve().parent.parent
FRONT_END_MODULES = ("textual", "rich", "typer")
HEAVY_MODULES = ("sklearn", "librosa", "textual")


def engine_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(engine.__path__, prefix="engine."))


def loaded_modules(code: str) -> set[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(output.strip().splitlines()[-1]))


def test_every_engine_module_imports_without_front_end_libraries() -> None:
    modules = engine_modules()
    assert "engine.core.settings" in modules
    imports = "\n".join(f"import {name}" for name in modules)
    loaded = loaded_modules(imports)
    leaked = sorted(m for m in loaded if m.split(".")[0] in FRONT_END_MODULES)
    assert not leaked, f"engine imports front-end libraries: {leaked[:5]}"


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "from cli.main import create_app\n"
        "from typer.testing import CliRunner\n"
        "result = CliRunner().invoke(create_app(), ['--help'])\n"
        "assert result.exit_code == 0, result.output"
    )
    loaded = loaded_modules(code)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY_MODULES)
    assert not heavy, f"mmauth --help imported {heavy[:5]}"


AUTHENTICATION_UNUSED = ("librosa", "numba", "skops", "matplotlib", "sklearn", "pandas")
"""What an authentication attempt does not need: each would add a large share to a cold
`mmauth authenticate` (docs/BENCHMARKS.md, "Cold and warm login"). The models score with numpy
twins of their scikit-learn parts (engine.models._twins)."""
AUTHENTICATION_UNUSED_SCIPY = ("scipy.stats", "scipy.optimize")
"""The parts of scipy scikit-learn brought. scipy itself stays: skimage's warp (face
alignment) and the photo replay check use scipy.ndimage."""


def test_the_authentication_path_imports_only_what_it_uses(workspace, tmp_path: Path) -> None:
    import numpy as np

    from engine.core.settings import Settings
    from engine.models.face import FaceIdentifier
    from engine.models.product import ProductRecommender
    from engine.models.recommend import load_product_table
    from engine.models.saving import ModelRecord, save_models
    from engine.models.voice import VoiceVerifier
    from tests.engine.model_fixtures import write_merged_dataset
    from tests.engine.replay_fixtures import blob_image, syllables, write_audio, write_image

    rng = np.random.default_rng(0)
    members = np.repeat(["ana", "bo", "cy"], 6)
    rows = rng.normal(size=(3, 128))[np.repeat([0, 1, 2], 6)] + rng.normal(0, 0.2, (18, 128))
    face_model = FaceIdentifier(backend="dlib", cv_splits=2).fit(rows, members, np.arange(18) // 2)
    sequences = [rng.normal(size=(20, 13)) for _ in range(18)]
    voice_model = VoiceVerifier(cv_splits=2).fit(
        rows[:, :20], members, np.tile(["one", "two"], 9), sequences, np.arange(18) // 2
    )
    write_merged_dataset(workspace, rows=45)
    workspace.members_file.parent.mkdir(parents=True, exist_ok=True)
    workspace.members_file.write_text("member,customer_id\nana,A5\nbo,A7\ncy,A9\n")
    product_model = ProductRecommender(
        candidates=("random_forest",), cv_splits=3, cv_repeats=1, importance_repeats=1
    ).fit(*load_product_table(workspace)[:2])
    # Models may only grant members enrolled in the workspace (engine.models.signing).
    for member in ("ana", "bo", "cy"):
        for folder, name in ((workspace.faces_dir, "neutral.png"), (workspace.voices_dir, "a.wav")):
            (folder / member).mkdir(parents=True, exist_ok=True)
            (folder / member / name).write_bytes(b"stand-in")
    records = [
        ModelRecord(name, model, {}, {})
        for name, model in (
            ("face", face_model),
            ("voice", voice_model),
            ("product", product_model),
        )
    ]
    save_models(workspace, records, Settings())
    photo = write_image(tmp_path / "probe.png", blob_image(1, size=120))
    clip = write_audio(tmp_path / "probe.wav", syllables(1))
    # What the steps of an attempt run: models loaded from their state files for inference,
    # the probe pipelines (dlib backend), the replay fingerprints, the voice model (with its
    # DTW) and the product recommendation.
    code = f"""
import numpy as np
from pathlib import Path
from engine.auth.replay import photo_fingerprint
from engine.auth.replay_recordings import closest_copy, log_frequency_spectrogram
from engine.core.settings import load_settings
from engine.core.workspace import Workspace
from engine.faces.extract import image_face_vector, read_probe_photo
from engine.models.dtw import dtw_costs
from engine.models.loading import load_model_bundle
from engine.models.recommend import recommend_for_member
from engine.voices.extract import load_probe_recording, recording_sample
import engine.auth.flow

root = Path({str(workspace.root)!r})
settings = load_settings(root, {{"face.backend": "dlib"}})
bundle = load_model_bundle(Workspace(root), for_inference=True)
image = read_probe_photo(Path({str(photo)!r}), settings)
match = bundle.face.identify(image_face_vector(image, settings))
photo_fingerprint(image.pixels)
recording = load_probe_recording({str(clip)!r}, settings)
sample = recording_sample(recording, settings, {str(clip)!r})
spectrogram = log_frequency_spectrogram(recording.samples, recording.sample_rate)
closest_copy(spectrogram, [spectrogram])
dtw_costs([sample.mfcc_sequence], [sample.mfcc_sequence])
bundle.voice.verify(np.zeros(20), np.zeros((30, 13)), "ana")  # the stand-in model's shapes
recommend_for_member(Workspace(root), bundle, "ana")
"""
    loaded = loaded_modules(code)
    used = sorted(
        m
        for m in loaded
        if m.split(".")[0] in AUTHENTICATION_UNUSED or m.startswith(AUTHENTICATION_UNUSED_SCIPY)
    )
    assert not used, f"an authentication attempt imported {used[:5]}"

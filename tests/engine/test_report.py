from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.core.settings import load_settings
from engine.core.workspace import Workspace
from engine.models.evaluation import evaluate_models
from engine.models.training import train_models
from engine.reports.html import build_report
from tests.engine.model_fixtures import (
    write_audio_features,
    write_image_features,
    write_merged_dataset,
)

CHECK_IMAGES = """
<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const loaded = images.filter((image) => image.complete && image.naturalWidth > 0);
  document.title = `IMAGES ${images.length} LOADED ${loaded.length}`;
});
</script>
"""


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace with customers, both feature tables, the three trained models and an
    evaluation of the face probes."""
    workspace = Workspace(tmp_path_factory.mktemp("report"))
    write_merged_dataset(workspace)
    write_image_features(workspace)
    write_audio_features(workspace)
    settings = load_settings(
        workspace.root, {"models.cv_splits": 2, "models.cv_repeats": 1}, environ={}
    )
    train_models(workspace, settings)
    evaluate_models(workspace, settings)
    build_report(workspace)
    return workspace


def image_sources(page: Path) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page.read_text(encoding="utf-8"))


def test_an_empty_workspace_gets_a_report_naming_the_commands(workspace: Workspace) -> None:
    result = build_report(workspace)
    text = result.html.read_text(encoding="utf-8")
    assert result.figures == ()
    assert "data/merged_dataset.csv is missing: run mmauth merge" in text
    assert "data/image_features.csv is missing: run mmauth features" in text
    assert "data/audio_features.csv is missing: run mmauth features" in text
    assert "models/training_summary.csv is missing: run mmauth train" in text
    assert "reports/evaluation.json is missing: run mmauth evaluate" in text


def test_damaged_inputs_cost_their_section_not_the_report(workspace: Workspace) -> None:
    write_merged_dataset(workspace)
    workspace.image_features.write_text("member,role\nana,enrol\n", encoding="utf-8")
    workspace.audio_features.write_bytes(b"\xff\xfe\x00garbage")
    workspace.reports_dir.mkdir()
    (workspace.reports_dir / "evaluation.json").write_text("{not json", encoding="utf-8")
    result = build_report(workspace)
    missing = {s.title: s.missing for s in result.sections}
    assert "column 'source': is missing; run mmauth features again" in missing["Face features"]
    assert "data/audio_features.csv" in missing["Voice features"]
    assert "is not valid JSON" in missing["Probe evaluation"]
    assert "customers_category.png" in {f.name for f in result.figures}


def test_every_figure_exists_decodes_and_is_not_blank(reported: Workspace) -> None:
    page = reported.reports_dir / "report.html"
    sources = image_sources(page)
    expected = {
        "customers_category.png",
        "customers_purchase.png",
        "customers_engagement_purchase.png",
        "customers_correlation.png",
        "image_count_member.png",
        "image_count_emotion.png",
        "image_count_augmentation.png",
        "image_distributions.png",
        "image_correlation.png",
        "audio_count_phrase.png",
        "audio_distributions.png",
        "audio_correlation.png",
        "models_comparison.png",
        "product_candidates.png",
        "product_importance.png",
        "product_confusion.png",
        "face_confusion.png",
        "face_scores.png",
        "face_det.png",
        "voice_scores.png",
        "voice_det.png",
        "probe_face_scores.png",
        "probe_face_det.png",
    }
    assert expected <= set(sources)
    for source in sources:
        with Image.open(reported.reports_dir / source) as image:
            pixels = np.asarray(image.convert("L"), dtype=float)
        assert pixels.shape[0] > 100 and pixels.std() > 5, source
    text = page.read_text(encoding="utf-8")
    assert "FPIR: 0.00% [0.00%, 79.35%] (0/1)" in text  # one stranger probe: Wilson interval
    assert "No age column" in text  # the table has none, and the report says so
    assert "macro-F1" in text and "baseline" in text
    assert text.count("<table>") == 3 and "(chosen)</td>" in text and "stratified</td>" in text


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("MMAUTH_REQUIRE_SHARED") == "1":
            pytest.fail("chromium is not installed and MMAUTH_REQUIRE_SHARED=1")
        pytest.skip("chromium is not installed")
    return found


def run_chromium(browser: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_headless_chromium_loads_every_image(reported: Workspace, tmp_path: Path) -> None:
    browser = chromium()
    page = reported.reports_dir / "report.html"
    checked = reported.reports_dir / "report_checked.html"
    checked.write_text(
        page.read_text(encoding="utf-8").replace("</body>", CHECK_IMAGES + "</body>"),
        encoding="utf-8",
    )
    dom = run_chromium(browser, tmp_path / "profile", "--dump-dom", checked.as_uri())
    total = len(image_sources(page))
    assert f"<title>IMAGES {total} LOADED {total}</title>" in dom.stdout, dom.stderr[-2000:]

    screenshot = tmp_path / "report.png"
    run_chromium(
        browser,
        tmp_path / "profile",
        f"--screenshot={screenshot}",
        "--window-size=1200,2400",
        page.as_uri(),
    )
    with Image.open(screenshot) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    # Figures and text on a white page: far from uniform.
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.01

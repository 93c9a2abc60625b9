from pathlib import Path

import pytest

from engine.core.errors import ConfigError
from engine.core.settings import Settings, dump_toml, load_settings, read_toml, settings_as_dict


def write_toml(root: Path, text: str) -> None:
    (root / "mmauth.toml").write_text(text, encoding="utf-8")


def test_defaults_without_any_source(tmp_path: Path) -> None:
    assert load_settings(tmp_path, environ={}) == Settings()
    assert Settings().face.backend == "dlib"  # the pretrained backend serves real people


def test_precedence_defaults_toml_environment_flags(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        'seed = 3\n[face]\nbackend = "classic"\ncrop_size = 96\n[models]\ntarget_fmr = 0.05\n',
    )
    environ = {"MMAUTH_FACE__CROP_SIZE": "64", "MMAUTH_SEED": "5"}
    settings = load_settings(tmp_path, {"seed": 7}, environ=environ)
    assert settings.face.backend == "classic"  # toml over default
    assert settings.face.crop_size == 64  # environment over toml
    assert settings.seed == 7  # flag over environment
    assert settings.models.target_fmr == 0.05
    assert settings.voice.sample_rate == 16_000  # untouched default


def test_flags_left_unset_do_not_override(tmp_path: Path) -> None:
    write_toml(tmp_path, "jobs = 2\n")
    assert load_settings(tmp_path, {"jobs": None}, environ={}).jobs == 2


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("colour = 1\n", "unknown setting 'colour'"),
        ('[face]\nbackend = "opencv"\n', "face.backend must be one of classic, dlib"),
        ("[models]\ntarget_fmr = 0.9\n", r"target_fmr must be above 0 and below 0.5 \(both"),
        ("[models]\ntarget_fmr = 0.5\n", r"below 0.5 \(both excluded\), not 0.5$"),
        ("[models]\ntarget_fmr = 0\n", r"above 0 and below 0.5 \(both excluded\), not 0.0$"),
        ('jobs = "many"\n', "jobs must be int"),
        ("jobs = 2.5\n", "jobs must be int"),
        ("face = 3\n", "'face' is a section"),
        ("[face\n", "is not valid TOML"),
    ],
)
def test_bad_toml_values_name_the_setting(tmp_path: Path, text: str, match: str) -> None:
    write_toml(tmp_path, text)
    with pytest.raises(ConfigError, match=match):
        load_settings(tmp_path, environ={})


def test_the_removed_fusion_setting_says_what_happened(tmp_path: Path) -> None:
    write_toml(tmp_path, '[models]\nfusion = "score"\n')
    with pytest.raises(ConfigError, match=r"mmauth.toml: models.fusion was removed .* face AND"):
        load_settings(tmp_path, environ={})
    (tmp_path / "mmauth.toml").unlink()
    with pytest.raises(ConfigError, match=r"environment: models.fusion was removed"):
        load_settings(tmp_path, environ={"MMAUTH_MODELS__FUSION": "and"})


def test_environment_values_are_coerced_and_checked(tmp_path: Path) -> None:
    settings = load_settings(
        tmp_path,
        environ={"MMAUTH_FACE__ALIGN_EYES": "no", "MMAUTH_JOBS": "2", "MMAUTH_WORKSPACE": "/x"},
    )
    assert settings.face.align_eyes is False and settings.jobs == 2
    with pytest.raises(ConfigError, match="names no settings section 'camera'"):
        load_settings(tmp_path, environ={"MMAUTH_CAMERA__ZOOM": "2"})
    with pytest.raises(ConfigError, match="environment: face.align_eyes must be bool"):
        load_settings(tmp_path, environ={"MMAUTH_FACE__ALIGN_EYES": "maybe"})


def test_dump_toml_round_trips_every_setting(tmp_path: Path) -> None:
    original = Settings()
    values = settings_as_dict(original)
    (tmp_path / "mmauth.toml").write_text(dump_toml(values), encoding="utf-8")
    assert read_toml(tmp_path / "mmauth.toml") == values
    assert load_settings(tmp_path, environ={}) == original

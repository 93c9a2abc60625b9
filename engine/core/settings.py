"""One typed settings object, loaded from defaults <- mmauth.toml <- environment <- CLI flags.

Environment variables: ``MMAUTH_SEED``, ``MMAUTH_JOBS``, ``MMAUTH_EXECUTOR``, ``MMAUTH_SCHEDULER``
for top-level fields, and ``MMAUTH_<SECTION>__<FIELD>`` for a section's field, for example
``MMAUTH_FACE__BACKEND=dlib`` or ``MMAUTH_MODELS__TARGET_FMR=0.001``. CLI flags arrive as a
mapping of dotted keys (``{"face.backend": "dlib"}``). Nothing is read at import time.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from engine.core.errors import ConfigError

SETTINGS_FILE_NAME = "mmauth.toml"
ENV_PREFIX = "MMAUTH_"
# Variables that share the prefix but are not settings.
_ENV_NOT_SETTINGS = {"MMAUTH_WORKSPACE", "MMAUTH_REQUIRE_SHARED"}

FaceBackend = Literal["classic", "dlib"]
Executor = Literal["loky", "dask"]
FaceThresholdRule = Literal["auto", "population", "gaussian_tail", "empirical"]
VoiceThresholdRule = Literal["auto", "population", "gaussian_tail"]
MergeShape = Literal["auto", "assignment", "profile"]


@dataclasses.dataclass(frozen=True)
class FaceSettings:
    """How photos become feature vectors."""

    backend: FaceBackend = "dlib"
    """Feature backend: ``dlib`` (128-d ResNet embedding, pretrained on many faces; the default
    because it tells real people apart far better: docs/BENCHMARKS.md, section "End-to-end
    decision") or ``classic`` (HOG + LBP, scikit-image only)."""
    crop_size: int = 128
    """Side in pixels of the aligned face crop the classic features are computed on."""
    align_eyes: bool = False
    """Classic backend: rotate the crop so the eyes are level (by the face's mirror symmetry);
    dlib always aligns on its 5 landmarks. Off by default: on Yale's upright faces it left more
    crops off dlib's eye line than no rotation did and lowered the feature check
    (docs/BENCHMARKS.md, "Face pipeline"); turn it on for photos with tilted heads."""
    max_pixels: int = 50_000_000
    """Images with more pixels than this are refused before decoding (decompression bombs),
    except a JPEG, which libjpeg then decodes at 1/2 to 1/8 scale when that fits."""
    max_side: int = 1600
    """Larger images are downscaled to this longest side before detection."""
    save_augmented: bool = False
    """Also write augmented images to data/processed/augmented/ for inspection."""
    mirror_average: bool = True
    """dlib backend: average the embeddings of the face and of its mirror image: twice the
    embedding time for better rejection of strangers (docs/BENCHMARKS.md, "Mirror averaging:
    accuracy gain and cost")."""
    comparable_face_area: float = 0.5
    """A photo with a second face whose area is at least this fraction of the largest face's is
    refused (``multiple_faces``; at enrolment a failure to acquire) instead of being decided on
    one of them. Half the area: a face on a poster, a photo on the wall or a passer-by behind
    the person is much smaller and still accepted, while the detectors' boxes for two faces of
    the same size can differ by a third; above 1 turns the check off."""


@dataclasses.dataclass(frozen=True)
class FaceAugmentSettings:
    """Seeded augmentation of enrolment photos."""

    copies: int = 4
    """Augmented copies per photo, besides the original (0 disables augmentation)."""
    rotation_degrees: float = 15.0
    flip: bool = True
    greyscale: bool = True
    brightness: float = 0.25
    contrast: float = 0.25
    noise_sigma: float = 0.03
    blur_sigma: float = 1.0
    scale: float = 0.08
    translate: float = 0.05


@dataclasses.dataclass(frozen=True)
class VoiceSettings:
    """How recordings are cleaned and turned into features."""

    sample_rate: int = 16_000
    """Every clip is resampled to this rate (soxr) before anything else."""
    max_duration_s: float = 30.0
    """Longer recordings are refused; no more than this is read."""
    min_speech_s: float = 0.1
    """Less speech than this after trimming silence is refused. Short enough for a real one-word
    take (0.3 s refused many, and their members with them), long enough to refuse a click
    (docs/BENCHMARKS.md, section "End-to-end decision")."""
    trim_top_db: float = 40.0
    """Energy VAD: frames quieter than this below the peak count as silence (30 dB cuts the
    weak fricatives of short words; docs/BENCHMARKS.md, "Voice features")."""
    max_clipped_fraction: float = 0.01
    """Refuse clips with more samples at full scale than this fraction (heavy clipping)."""
    n_mfcc: int = 20


@dataclasses.dataclass(frozen=True)
class VoiceAugmentSettings:
    """Seeded augmentation of enrolment recordings."""

    copies: int = 4
    """Augmented copies per recording, besides the original (0 disables augmentation)."""
    pitch_semitones: float = 2.0
    stretch_min: float = 0.85
    stretch_max: float = 1.15
    snr_db: float = 20.0
    gain_db: float = 6.0
    reverb: bool = True


@dataclasses.dataclass(frozen=True)
class MergeSettings:
    """How the customer tables are read and merged."""

    shape: MergeShape = "auto"
    """Which table layout to expect; ``auto`` recognises it from the columns."""
    columns: dict[str, str] = dataclasses.field(default_factory=dict)
    """Overrides of column roles, role -> column name (see engine.customers.merge for the roles)."""
    outlier_iqr: float = 3.0
    """Numeric values beyond this many IQRs outside the quartiles are clipped (and reported);
    0 turns clipping off."""
    profiles_file: str = ""
    """Social profile table inside data/raw/customers/; empty finds it by its usual names."""
    transactions_file: str = ""
    """Transaction table inside data/raw/customers/; empty finds it by its usual names."""
    mapping_file: str = ""
    """Id mapping (transaction id -> profile id); empty uses id_mapping.csv when present."""


@dataclasses.dataclass(frozen=True)
class ModelSettings:
    """Training and calibration of the three models."""

    target_fmr: float = 0.01
    """False match rate the thresholds are calibrated to, on held-out scores."""
    face_threshold_rule: FaceThresholdRule = "auto"
    """How the face threshold is set (engine.models.face.FaceIdentifier's ``threshold_rule``):
    ``auto`` takes the dlib embedding's operating point measured on real people
    (``population``) for targets of 0.5% and above, and calibrates on the enrolled members
    otherwise; ``gaussian_tail`` and ``empirical`` always calibrate on the enrolled members, for
    faces unlike real photos (the sample's drawn faces)."""
    voice_threshold_rule: VoiceThresholdRule = "auto"
    """How the voice threshold is set (engine.models.voice.VoiceVerifier's ``threshold_rule``):
    ``auto`` takes the operating point of the normalised voice score measured over many member
    sets (``population``) for targets of 0.5% and above; ``gaussian_tail`` calibrates on the
    enrolled members' impostor scores alone."""
    cv_splits: int = 5
    cv_repeats: int = 3


@dataclasses.dataclass(frozen=True)
class AuthSettings:
    """The authentication flow's defences."""

    lockout_attempts: int = 5
    """Consecutive denied attempts on one member that lock it."""
    lockout_window_s: float = 600.0
    lockout_duration_s: float = 300.0
    replay_photo_residual: float = 8.0
    """Copy residual (grey levels left after registering a photo onto an enrolment photo,
    engine.auth.replay_photos) at or under which a photo counts as a replayed enrolment; chosen
    on the development part of the shared data (docs/BENCHMARKS.md, "Replay defence")."""
    replay_audio_similarity: float = 0.975
    """Copy similarity (engine.auth.replay_recordings) at or over which a clip counts as a
    replayed enrolment; chosen on the development part of the shared data as the first 0.005
    step above every distinct take's (docs/BENCHMARKS.md, "Replay defence")."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting of mmauth; sections group the stages."""

    seed: int = 0
    """Seed of every random choice (augmentation, splits, sample data)."""
    jobs: int = 1
    """Worker processes for feature extraction."""
    executor: Executor = "loky"
    """``loky`` (local processes) or ``dask`` (a dask.distributed cluster)."""
    scheduler: str = ""
    """Address of a dask scheduler; empty starts a LocalCluster."""
    face: FaceSettings = dataclasses.field(default_factory=FaceSettings)
    face_augment: FaceAugmentSettings = dataclasses.field(default_factory=FaceAugmentSettings)
    voice: VoiceSettings = dataclasses.field(default_factory=VoiceSettings)
    voice_augment: VoiceAugmentSettings = dataclasses.field(default_factory=VoiceAugmentSettings)
    merge: MergeSettings = dataclasses.field(default_factory=MergeSettings)
    models: ModelSettings = dataclasses.field(default_factory=ModelSettings)
    auth: AuthSettings = dataclasses.field(default_factory=AuthSettings)


# Settings mmauth once had, with what happened to them: mmauth.toml or the environment naming
# one is refused with this message rather than the bare "unknown setting".
_REMOVED_SETTINGS = {
    "models.fusion": (
        "models.fusion was removed after mmauth 0.1.0: score fusion let a strong face carry "
        "a failing voice, so the decision is always face AND voice; delete the setting"
    ),
}

_SECTIONS = {
    f.name for f in dataclasses.fields(Settings) if dataclasses.is_dataclass(f.default_factory)
}


def load_settings(
    workspace: Path,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings for a workspace: defaults, then its mmauth.toml, then MMAUTH_* variables, then flags."""
    settings = Settings()
    toml_path = workspace / SETTINGS_FILE_NAME
    if toml_path.is_file():
        settings = apply_updates(settings, read_toml(toml_path), source=str(toml_path))
    env_updates = _env_updates(os.environ if environ is None else environ)
    settings = apply_updates(settings, env_updates, source="environment")
    if overrides:
        settings = apply_updates(settings, _nest(overrides), source="command line")
    return settings


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, naming the file and line on a syntax error."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from error
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from error


def apply_updates(
    settings: Any, updates: Mapping[str, Any], *, source: str, prefix: str = ""
) -> Any:
    """A copy of a settings dataclass with nested updates applied and type-checked."""
    known = {f.name: f for f in dataclasses.fields(settings)}
    hints = typing.get_type_hints(type(settings))
    changes: dict[str, Any] = {}
    for key, value in updates.items():
        dotted = f"{prefix}{key}"
        if dotted in _REMOVED_SETTINGS:
            raise ConfigError(f"{source}: {_REMOVED_SETTINGS[dotted]}")
        if key not in known:
            raise ConfigError(
                f"{source}: unknown setting {dotted!r}; known: {', '.join(sorted(known))}"
            )
        current = getattr(settings, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: {dotted!r} is a section; give it as a table")
            changes[key] = apply_updates(current, value, source=source, prefix=f"{dotted}.")
        else:
            changes[key] = coerce(value, hints[key], name=dotted, source=source)
    updated = dataclasses.replace(settings, **changes)
    validate(updated, source=source)
    return updated


def coerce(value: Any, annotation: Any, *, name: str, source: str) -> Any:
    """Convert a TOML or environment value to the annotated type, or raise ConfigError."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise ConfigError(
                f"{source}: {name} must be one of {', '.join(map(str, choices))}, not {value!r}"
            )
        return value
    if origin is dict or annotation is dict:
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{source}: {name} must be a table of strings")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    try:
        if annotation is bool:
            return _to_bool(value)
        if annotation is int and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if annotation is float and not isinstance(value, bool):
            return float(value)
        if annotation is str:
            return str(value)
    except (TypeError, ValueError):
        pass
    raise ConfigError(
        f"{source}: {name} must be {getattr(annotation, '__name__', annotation)}, not {value!r}"
    )


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(value)


def validate(settings: Any, *, source: str) -> None:
    """Range checks that types alone cannot express."""
    checks: list[tuple[bool, str]] = []
    if isinstance(settings, Settings):
        checks.append((settings.jobs >= 1, "jobs must be at least 1"))
    elif isinstance(settings, ModelSettings):
        checks += [
            (
                0.0 < settings.target_fmr < 0.5,
                # "between" read as inclusive: 0.5 itself was refused with a range that seemed
                # to allow it.
                "models.target_fmr must be above 0 and below 0.5 (both excluded), "
                f"not {settings.target_fmr}",
            ),
            (settings.cv_splits >= 2, "models.cv_splits must be at least 2"),
            (settings.cv_repeats >= 1, "models.cv_repeats must be at least 1"),
        ]
    elif isinstance(settings, FaceSettings):
        checks += [
            (32 <= settings.crop_size <= 512, "face.crop_size must be between 32 and 512"),
            (
                settings.max_pixels > 0 and settings.max_side >= 64,
                "face.max_pixels/max_side too small",
            ),
            (
                settings.comparable_face_area > 0,
                "face.comparable_face_area must be above 0 (above 1 turns the check off)",
            ),
        ]
    elif isinstance(settings, VoiceSettings):
        checks += [
            (8_000 <= settings.sample_rate <= 48_000, "voice.sample_rate must be 8000..48000"),
            (
                settings.max_duration_s > settings.min_speech_s > 0,
                "voice durations are inconsistent",
            ),
        ]
    elif isinstance(settings, MergeSettings):
        checks.append((settings.outlier_iqr >= 0, "merge.outlier_iqr cannot be negative"))
    elif isinstance(settings, FaceAugmentSettings):
        checks.append((settings.copies >= 0, "face_augment.copies cannot be negative"))
    elif isinstance(settings, VoiceAugmentSettings):
        checks += [
            (settings.copies >= 0, "voice_augment.copies cannot be negative"),
            (
                0 < settings.stretch_min <= settings.stretch_max,
                "voice_augment stretch range inverted",
            ),
        ]
    elif isinstance(settings, AuthSettings):
        checks += [
            (settings.lockout_attempts >= 1, "auth.lockout_attempts must be at least 1"),
            # NaN compares false with everything: a window or lock of NaN would switch the
            # lockout off, and a NaN bound would pass any comparison with the accepted one.
            (
                math.isfinite(settings.lockout_window_s) and settings.lockout_window_s > 0,
                f"auth.lockout_window_s must be a positive number, not {settings.lockout_window_s}",
            ),
            (
                math.isfinite(settings.lockout_duration_s) and settings.lockout_duration_s >= 0,
                "auth.lockout_duration_s must be a number of seconds (0 or more), not "
                f"{settings.lockout_duration_s}",
            ),
            (
                math.isfinite(settings.replay_photo_residual)
                and settings.replay_photo_residual >= 0,
                "auth.replay_photo_residual must be a number (0 or more), not "
                f"{settings.replay_photo_residual}",
            ),
            (
                0.0 < settings.replay_audio_similarity <= 1.0,
                "auth.replay_audio_similarity in (0, 1]",
            ),
        ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{source}: {message}")


def _env_updates(environ: Mapping[str, str]) -> dict[str, Any]:
    top_level = {f.name for f in dataclasses.fields(Settings)} - _SECTIONS
    updates: dict[str, Any] = {}
    for variable, value in environ.items():
        if not variable.startswith(ENV_PREFIX) or variable in _ENV_NOT_SETTINGS:
            continue
        key = variable[len(ENV_PREFIX) :].lower()
        if "__" in key:
            section, _, field = key.partition("__")
            if section not in _SECTIONS:
                raise ConfigError(f"environment: {variable} names no settings section {section!r}")
            updates.setdefault(section, {})[field] = value
        elif key in top_level:
            updates[key] = value
    return updates


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested


def settings_as_dict(settings: Settings) -> dict[str, Any]:
    """Nested plain dictionary of every setting, for `mmauth config show` and manifests."""
    return dataclasses.asdict(settings)


def dump_toml(values: Mapping[str, Any]) -> str:
    """TOML text for a nested mapping of plain values (the subset mmauth.toml uses)."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in values.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables:
        scalars = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
        nested = {k: v for k, v in table.items() if isinstance(v, Mapping)}
        lines += ["", f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in scalars.items()]
        for sub, sub_table in nested.items():
            lines += ["", f"[{name}.{sub}]"] + [
                f"{k} = {_toml_value(v)}" for k, v in sub_table.items()
            ]
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    raise ConfigError(f"cannot write {value!r} to TOML")

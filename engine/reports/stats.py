"""What a workspace holds, at a glance: members, photos, clips, customers and their features.

Read-only and headless: the Stats screen of the terminal app shows these figures, and every
missing input names the command that creates it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.core.workspace import AUDIO_SUFFIXES, IMAGE_SUFFIXES, Workspace, member_folders
from engine.customers.members import read_members
from engine.models.names import SUMMARY_COLUMNS, ModelName

TARGET_COLUMN = "preferred_category"
MAX_CORRELATION_COLUMNS = 10
MAX_AUDIO_FEATURES = 8
_TAKE_NUMBER = re.compile(r"_\d+$")


@dataclasses.dataclass(frozen=True)
class Table:
    """A small table ready to show: column names and rows of plain values."""

    columns: tuple[str, ...]
    """Column headings."""
    rows: tuple[tuple[Any, ...], ...]
    """One tuple per row, in the order of ``columns``."""


@dataclasses.dataclass(frozen=True)
class MissingData:
    """An input the statistics could not use, and the command that creates it."""

    what: str
    """The missing file or folder, relative to the workspace."""
    command: str
    """The command that creates it, e.g. ``mmauth merge``."""

    def __str__(self) -> str:
        return f"{self.what} is missing: run {self.command}"


@dataclasses.dataclass(frozen=True)
class Correlation:
    """Pearson correlations between numeric columns."""

    names: tuple[str, ...]
    """The columns, in the order of the matrix's rows and columns."""
    matrix: tuple[tuple[float, ...], ...]
    """Square matrix of correlations in [-1, 1] (0 where a column is constant)."""


@dataclasses.dataclass(frozen=True)
class CustomerStats:
    """The merged customer table (data/merged_dataset.csv) summarised."""

    customers: int
    """Rows of the merged table (one per customer)."""
    numeric_columns: int
    """Numeric feature columns besides the id and the target."""
    categories: Table
    """Preferred product category and how many customers have it, most common first."""
    ages: tuple[float, ...]
    """Values of the age column (empty when the table has none)."""
    purchase_column: str | None
    """The purchase-amount column plotted (e.g. ``purchase_amount_mean``), if any."""
    purchase_amounts: tuple[float, ...]
    """Its values."""
    engagement_column: str | None
    """The engagement column plotted against the purchase amount, if any."""
    engagement_vs_purchase: tuple[tuple[float, float], ...]
    """(engagement, purchase amount) per customer where both are known."""
    correlation: Correlation | None
    """Correlations of the most varying numeric features (None with fewer than two)."""


@dataclasses.dataclass(frozen=True)
class WorkspaceStats:
    """Everything the Stats screen shows about one workspace."""

    root: Path
    """The workspace folder."""
    members: Table
    """member, customer, enrolment photos and clips, probe photos and clips."""
    probes: Table
    """Probe labels (members and strangers) with their photo and clip counts."""
    photos: Table | None
    """Rows of image_features.csv per member, emotion and augmentation (None before features)."""
    clips: Table
    """Clips per member, phrase and augmentation (from audio_features.csv, else the folders)."""
    customers: CustomerStats | None
    """The merged customer table, None before ``mmauth merge``."""
    audio_features: dict[str, dict[str, tuple[float, ...]]]
    """First audio features: feature column -> member -> values of the original enrolment clips."""
    missing: tuple[MissingData, ...]
    """Inputs that are absent, each with the command that creates it."""


def workspace_stats(workspace: Workspace) -> WorkspaceStats:
    """Count and summarise everything a workspace holds; absent inputs are listed, not raised."""
    missing: list[MissingData] = []
    enrol_faces = _media_files(workspace.faces_dir, IMAGE_SUFFIXES, sniff=_holds_image)
    enrol_voices = _media_files(workspace.voices_dir, AUDIO_SUFFIXES)
    probe_faces = _media_files(workspace.probe_faces_dir, IMAGE_SUFFIXES, sniff=_holds_image)
    probe_voices = _media_files(workspace.probe_voices_dir, AUDIO_SUFFIXES)
    if not enrol_faces and not enrol_voices:
        missing.append(
            MissingData(
                "data/raw/faces, data/raw/voices",
                "mmauth demo (the sample, ready to use), mmauth sample (its raw data only) or "
                "mmauth enroll",
            )
        )

    links = read_members(workspace)
    enrolled = sorted(set(enrol_faces) | set(enrol_voices))
    members = Table(
        ("member", "customer", "photos", "clips", "probe photos", "probe clips"),
        tuple(
            (
                name,
                links.get(name, "-"),
                len(enrol_faces.get(name, ())),
                len(enrol_voices.get(name, ())),
                len(probe_faces.get(name, ())),
                len(probe_voices.get(name, ())),
            )
            for name in enrolled
        ),
    )
    labels = sorted(set(probe_faces) | set(probe_voices))
    probes = Table(
        ("label", "kind", "photos", "clips"),
        tuple(
            (
                label,
                "member" if label in enrolled else "stranger",
                len(probe_faces.get(label, ())),
                len(probe_voices.get(label, ())),
            )
            for label in labels
        ),
    )

    photos = None
    if workspace.image_features.is_file():
        import pandas as pd

        from engine.core.feature_tables import TEXT_COLUMNS

        image_table = pd.read_csv(
            workspace.image_features,
            dtype=dict.fromkeys(TEXT_COLUMNS, str),
            usecols=_present_columns(
                workspace.image_features, ("member", "emotion", "augmentation", "role")
            ),
        )
        photos = _count_table(image_table, ("member", "emotion", "augmentation"))
    else:
        missing.append(MissingData("data/image_features.csv", "mmauth features"))

    audio_features: dict[str, dict[str, tuple[float, ...]]] = {}
    if workspace.audio_features.is_file():
        import pandas as pd

        from engine.core.feature_tables import TEXT_COLUMNS

        audio_table = pd.read_csv(workspace.audio_features, dtype=dict.fromkeys(TEXT_COLUMNS, str))
        clips = _count_table(audio_table, ("member", "phrase", "augmentation"))
        audio_features = _audio_feature_values(audio_table)
    else:
        missing.append(MissingData("data/audio_features.csv", "mmauth features"))
        clips = _clips_from_folders(enrol_voices)

    customers = None
    if workspace.merged_dataset.is_file():
        import pandas as pd

        customers = customer_stats(pd.read_csv(workspace.merged_dataset))
    else:
        missing.append(MissingData("data/merged_dataset.csv", "mmauth merge"))

    return WorkspaceStats(
        root=workspace.root,
        members=members,
        probes=probes,
        photos=photos,
        clips=clips,
        customers=customers,
        audio_features=audio_features,
        missing=tuple(missing),
    )


def customer_stats(table: Any) -> CustomerStats:
    """Summary of a merged customer table (a pandas DataFrame, one row per customer)."""
    import numpy as np

    numeric = table.select_dtypes(include="number").drop(
        columns=[c for c in table.columns if c.endswith("_id") or c == "customer_id"],
        errors="ignore",
    )
    categories = Table(("category", "customers"), ())
    if TARGET_COLUMN in table.columns:
        counts = table[TARGET_COLUMN].astype(str).value_counts()
        categories = Table(
            ("category", "customers"),
            tuple((str(name), int(count)) for name, count in counts.items()),
        )
    age_column = _find_column(numeric.columns, ("age",))
    purchase_column = _find_column(numeric.columns, ("purchase_amount",))
    engagement_column = _find_column(numeric.columns, ("engagement_score", "engagement"))
    pairs: tuple[tuple[float, float], ...] = ()
    if purchase_column and engagement_column:
        both = numeric[[engagement_column, purchase_column]].dropna()
        pairs = tuple((float(e), float(p)) for e, p in both.itertuples(index=False))

    correlation = None
    chosen = _heatmap_columns(numeric)
    if len(chosen) >= 2:
        matrix = np.nan_to_num(numeric[chosen].corr().to_numpy(), nan=0.0)
        correlation = Correlation(
            names=tuple(chosen),
            matrix=tuple(tuple(round(float(v), 4) for v in row) for row in matrix),
        )
    return CustomerStats(
        customers=len(table),
        numeric_columns=numeric.shape[1],
        categories=categories,
        ages=_values(numeric, age_column),
        purchase_column=purchase_column,
        purchase_amounts=_values(numeric, purchase_column),
        engagement_column=engagement_column,
        engagement_vs_purchase=pairs,
        correlation=correlation,
    )


def _heatmap_columns(numeric: Any) -> list[str]:
    """Continuous features worth a heatmap cell: not one-hot flags, not constant, and of each
    aggregate family only the mean (min/max/sum mostly restate it)."""
    names = set(numeric.columns)
    chosen = []
    for name in numeric.columns:
        values = numeric[name].dropna()
        if values.nunique() <= 2:
            continue
        stem, _, aggregate = name.rpartition("_")
        if aggregate in {"min", "max", "sum"} and f"{stem}_mean" in names:
            continue
        chosen.append(name)
    return chosen[:MAX_CORRELATION_COLUMNS]


def phrase_of(path: Path) -> str:
    """The phrase a recording says: its file stem without a trailing ``_<n>`` take number."""
    return _TAKE_NUMBER.sub("", path.stem)


def _media_files(
    folder: Path, suffixes: tuple[str, ...], *, sniff: Callable[[Path], bool] | None = None
) -> dict[str, list[Path]]:
    """Files with one of ``suffixes`` per member folder; with ``sniff``, also the other files
    it accepts by their content (some photo sets, like Yale's, name their photos
    ``subject01.normal`` or ``subject01``)."""
    wanted = set(suffixes)
    found = {}
    for name, files in member_folders(folder).items():
        kept = [f for f in files if f.suffix.lower() in wanted or (sniff is not None and sniff(f))]
        if kept:
            found[name] = kept
    return found


def _holds_image(path: Path) -> bool:
    """Whether the file's header is one of the formats the photo loader reads."""
    from PIL import Image, UnidentifiedImageError

    from engine.faces.images import ALLOWED_FORMATS

    try:
        with Image.open(path, formats=ALLOWED_FORMATS):
            return True
    except Image.DecompressionBombError:
        return True  # an image all the same; mmauth features says why it is refused
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return False


def _present_columns(path: Path, wanted: tuple[str, ...]) -> list[str]:
    with path.open(encoding="utf-8-sig") as handle:
        header = handle.readline().strip().split(",")
    return [c for c in wanted if c in header]


def _count_table(table: Any, keys: tuple[str, ...]) -> Table:
    present = [k for k in keys if k in table.columns]
    if "role" in table.columns:
        table = table[table["role"] != "probe"]
    counts = table.groupby(present, dropna=False).size().reset_index(name="rows")
    return Table(
        (*present, "rows"),
        tuple(tuple(_plain(v) for v in row) for row in counts.itertuples(index=False)),
    )


def _clips_from_folders(voices: dict[str, list[Path]]) -> Table:
    rows: dict[tuple[str, str], int] = {}
    for member, files in voices.items():
        for file in files:
            key = (member, phrase_of(file))
            rows[key] = rows.get(key, 0) + 1
    return Table(
        ("member", "phrase", "augmentation", "rows"),
        tuple((m, p, "original", n) for (m, p), n in sorted(rows.items())),
    )


def _audio_feature_values(table: Any) -> dict[str, dict[str, tuple[float, ...]]]:
    if "member" not in table.columns:
        return {}
    rows = table
    if "role" in rows.columns:
        rows = rows[rows["role"] != "probe"]
    if "augmentation" in rows.columns:
        rows = rows[rows["augmentation"] == "original"]
    columns = [c for c in rows.columns if c.startswith("audio_feature_")][:MAX_AUDIO_FEATURES]
    return {
        column: {
            str(member): tuple(float(v) for v in group[column].dropna())
            for member, group in rows.groupby("member")
        }
        for column in columns
    }


def _find_column(columns: Any, stems: tuple[str, ...]) -> str | None:
    names = list(columns)
    for stem in stems:
        for name in names:
            if name == stem:
                return name
        for name in names:
            if name == f"{stem}_mean":
                return name
        for name in names:
            if name.startswith(f"{stem}_"):
                return name
    return None


def _values(table: Any, column: str | None) -> tuple[float, ...]:
    if column is None:
        return ()
    return tuple(float(v) for v in table[column].dropna())


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float) and value != value:
        return "-"
    return value


SHOWN_SUMMARY_COLUMNS = tuple(
    column
    for column in SUMMARY_COLUMNS
    if column not in ("n_train", "n_test", "chosen", "beats_baseline", "created")
    and not column.endswith("_std")
)
"""The columns of training_summary.csv the app shows (the counts give FMR and FNMR their
intervals: engine.core.metrics.held_out_rates)."""


def training_summary(workspace: Workspace) -> Table | None:
    """Metrics of the trained models (models/training_summary.csv), None before training."""
    import csv

    if not workspace.training_summary.is_file():
        return None
    with workspace.training_summary.open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    return Table(
        SHOWN_SUMMARY_COLUMNS,
        tuple(tuple(r.get(c, "") for c in SHOWN_SUMMARY_COLUMNS) for r in records),
    )


ConfusionMatrix = tuple[list[str], list[list[int]]]
"""(class labels, counts with rows true and columns predicted)."""


def saved_confusion_matrices(workspace: Workspace) -> dict[str, ConfusionMatrix]:
    """Held-out confusion matrices of the saved models, by model name (empty before training);
    raises ModelIntegrityError for a model file that is refused."""
    from engine.models.loading import load_model_bundle

    if not workspace.manifest.is_file():
        return {}
    bundle = load_model_bundle(workspace, require=())
    matrices: dict[str, ConfusionMatrix] = {}
    for name in (ModelName.FACE, ModelName.VOICE):
        evaluation = dict(getattr(getattr(bundle, name), "evaluation_", None) or {})
        if evaluation.get("labels") is not None and evaluation.get("confusion") is not None:
            matrices[name] = _confusion(evaluation["labels"], evaluation["confusion"])
    if bundle.product is not None:
        comparison = bundle.product.comparison_
        matrices[ModelName.PRODUCT] = _confusion(comparison.classes, comparison.confusion)
    return matrices


def _confusion(labels: Any, counts: Any) -> ConfusionMatrix:
    return [str(label) for label in labels], [[int(v) for v in row] for row in counts]


# Campaigns of engine.auth.simulate whose scores are mated (genuine) or non-mated (impostor).
_GENUINE_CAMPAIGNS = {ModelName.FACE: {"genuine"}, ModelName.VOICE: {"genuine"}}
_IMPOSTOR_CAMPAIGNS = {
    ModelName.FACE: {"stranger_face"},
    ModelName.VOICE: {"stranger_voice", "cross_member", "wrong_phrase"},
}


def simulation_scores(attempts: Any) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    """(genuine, impostor) scores per modality from a simulation's attempt outcomes, for DET
    plots; a modality is left out when either side has no score."""
    scores: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
    for modality in (ModelName.FACE, ModelName.VOICE):
        column = f"{modality}_score"

        def picked(campaigns: set[str], column: str = column) -> tuple[float, ...]:
            return tuple(
                float(getattr(a, column))
                for a in attempts
                if a.campaign in campaigns and getattr(a, column) is not None
            )

        genuine = picked(_GENUINE_CAMPAIGNS[modality])
        impostor = picked(_IMPOSTOR_CAMPAIGNS[modality])
        if genuine and impostor:
            scores[modality] = (genuine, impostor)
    return scores

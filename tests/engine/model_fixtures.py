"""Tiny feature tables for model tests, so they do not depend on the face and voice pipelines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.core.batch import BatchItem, ItemOutput, ItemResult
from engine.core.workspace import Workspace
from engine.voices.embedding import EMBEDDING_SIZE

MEMBERS = ("ana", "bo", "cy", "dee")
PHRASES = ("approve", "confirm")


def write_image_features(
    workspace: Workspace, members=MEMBERS, photos: int = 3, seed: int = 0
) -> None:
    """Clustered face vectors: each member around their own centre, an augmented copy per photo,
    and probe rows (one per member plus a stranger)."""
    rng = np.random.default_rng(seed)
    centres = {member: rng.normal(size=16) * 3 for member in (*members, "stranger")}
    rows = []

    def add(member: str, source: str, role: str, augmentation: str) -> None:
        vector = centres[member] + rng.normal(scale=0.6, size=16)
        rows.append(
            {
                "member": member,
                "emotion": ["normal", "happy", "surprised"][len(rows) % 3],
                "augmentation": augmentation,
                "source": source,
                "role": role,
                "backend": "classic",
                **{f"feature_{i}": value for i, value in enumerate(vector)},
            }
        )

    for member in members:
        for photo in range(photos):
            source = f"data/raw/faces/{member}/{photo}.png"
            for augmentation in ("original", "flip"):
                add(member, source, "enrol", augmentation)
    for member in (*members, "stranger"):
        add(member, f"data/raw/probes/faces/{member}/p.png", "probe", "original")
    workspace.data_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(workspace.image_features, index=False)
    place_enrolment_files(workspace, rows)


def write_audio_features(
    workspace: Workspace,
    members=MEMBERS[:3],
    takes: int = 3,
    seed: int = 0,
    dimensions: int = EMBEDDING_SIZE,
) -> None:
    """Clustered voice vectors (speaker embeddings of ``dimensions``) and MFCC sequences whose
    shape depends on the phrase and whose level depends on the speaker, written like
    engine.voices.extract writes them."""
    from engine.voices.extract import write_mfcc_sequences

    rng = np.random.default_rng(seed)
    speakers = {member: rng.normal(size=dimensions) * 3 for member in members}
    rows, results = [], []
    for member in members:
        for phrase_index, phrase in enumerate(PHRASES):
            for take in range(takes):
                source = f"data/raw/voices/{member}/{phrase}_{take}.wav"
                records, vectors, sequences = [], [], []
                for augmentation in ("original", "noise"):
                    records.append({"phrase": phrase, "augmentation": augmentation})
                    vectors.append(speakers[member] + rng.normal(scale=0.5, size=dimensions))
                    frames = np.linspace(0, np.pi * (phrase_index + 1), 24)
                    shape = np.sin(frames)[:, None] * np.arange(1, 6)
                    level = speakers[member][:5]
                    sequences.append(shape + level + rng.normal(scale=0.1, size=(24, 5)))
                item = BatchItem(Path(source), member, "enrol", source)
                results.append(ItemResult(item, ItemOutput(records, np.array(vectors), sequences)))
                for record, vector in zip(records, vectors, strict=True):
                    rows.append(
                        {
                            "member": member,
                            **record,
                            "source": source,
                            "role": "enrol",
                            **{f"audio_feature_{i}": v for i, v in enumerate(vector)},
                        }
                    )
    workspace.data_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(workspace.audio_features, index=False)
    write_mfcc_sequences(workspace, results)
    place_enrolment_files(workspace, rows)


def place_enrolment_files(workspace: Workspace, rows: list[dict]) -> None:
    """Stand-ins for the enrolment files the rows came from: models may only grant members
    enrolled in the workspace (engine.models.signing)."""
    for row in rows:
        if row["role"] == "enrol":
            path = workspace.root / row["source"]
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_bytes(b"stand-in")


def write_merged_dataset(workspace: Workspace, rows: int = 45, seed: int = 0) -> None:
    """A merged customer table whose category follows one column."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=rows)
    table = pd.DataFrame(
        {
            "customer_id": [f"A{i}" for i in range(rows)],
            "engagement_score": signal,
            "purchase_amount_mean": rng.normal(100, 20, size=rows),
            "preferred_category": np.where(signal > 0, "Books", "Sports"),
        }
    )
    workspace.data_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(workspace.merged_dataset, index=False)

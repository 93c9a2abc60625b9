"""The voice pipeline end to end on real recordings (FSDD): speakers are members, digits phrases."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.core.settings import Settings, VoiceAugmentSettings
from engine.core.workspace import Workspace
from engine.voices.extract import extract_voice_features, load_mfcc_sequences, voice_sample

SPEAKERS = ("george", "jackson", "nicolas")
DIGITS = (2, 6)
ENROL_TAKES = range(3)
PROBE_TAKE = 7


def arrange_fsdd(fsdd: Path, workspace: Workspace) -> None:
    """Symlink a few takes as data/raw/voices/<speaker>/<digit>_<take>.wav (+ one probe each)."""
    for speaker in SPEAKERS:
        for digit in DIGITS:
            for take in [*ENROL_TAKES, PROBE_TAKE]:
                folder = workspace.voices_dir if take in ENROL_TAKES else workspace.probe_voices_dir
                target = folder / speaker / f"{digit}_{take}.wav"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(fsdd / f"{digit}_{speaker}_{take}.wav")


@pytest.mark.shared
def test_fsdd_end_to_end(shared_fsdd: Path, workspace: Workspace) -> None:
    arrange_fsdd(shared_fsdd, workspace)
    settings = Settings(voice_augment=VoiceAugmentSettings(copies=2))
    report = extract_voice_features(workspace, settings)
    assert report.files == len(SPEAKERS) * len(DIGITS) * (len(ENROL_TAKES) + 1)
    # FSDD digits are short words: the only refusals allowed are "too little speech".
    assert all("under 0.3 s of speech" in f.reason for f in report.failures)
    assert len(report.failures) < report.files / 3

    # Digit phrases look like numbers: read the label columns as text.
    table = pd.read_csv(workspace.audio_features, dtype={"member": str, "phrase": str})
    assert set(table.member) == set(SPEAKERS)
    assert set(table.phrase) <= {str(d) for d in DIGITS}
    assert table.source.str.startswith("data/raw/").all()
    features = table.filter(like="audio_feature_").to_numpy()
    assert np.isfinite(features).all()
    sequences = load_mfcc_sequences(workspace)
    assert len(sequences) == len(table)

    # Speaker information survives: a probe's nearest enrolled original (standardised
    # features) is its own speaker for most probes.
    originals = table[table.augmentation == "original"]
    enrol, probes = originals[originals.role == "enrol"], originals[originals.role == "probe"]
    columns = [c for c in table.columns if c.startswith("audio_feature_")]
    mean, std = enrol[columns].mean(), enrol[columns].std() + 1e-9
    enrolled = ((enrol[columns] - mean) / std).to_numpy()
    hits = 0
    for _, probe in probes.iterrows():
        distances = np.linalg.norm(
            enrolled - ((probe[columns] - mean) / std).to_numpy(float), axis=1
        )
        hits += enrol.member.iloc[int(np.argmin(distances))] == probe.member
    assert hits >= 0.7 * len(probes)

    probe_source = probes.source.iloc[0]
    sample = voice_sample(workspace.root / probe_source, settings)
    np.testing.assert_allclose(
        sample.vector, probes[columns].iloc[0].to_numpy(float), rtol=1e-9, atol=1e-9
    )

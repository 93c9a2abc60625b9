"""The cost of trust on disk: the manifest's signature and the audit log's chain.

    .venv/bin/python -m benchmarks.trust [--workspace DIR] [--rows 1000] [--repeats 200]

On a trained workspace (``--workspace``, e.g. one made by ``mmauth demo``; a temporary copy is
used, and this installation's folder is a temporary one too) it measures, as medians:

1. per warm attempt: the audit chain check of the lockout step (``check_chain``: the entries
   written since the last check walked, the head compared with the outside record), and
   writing the attempt (``record_attempt``: chained insert, outside record updated) against a
   plain insert of the same row in the same database (what schema 1 did);
   and the seals of one member's replay records (engine.auth.replay), checked before every
   replay check, and the login defences against the accepted ones (engine.core.defences);
2. per model load (a cold start or a retrained model): the manifest's signature and the
   installation's record (``check_trusted``) and the members binding;
3. per process start: the whole chain walked (``check_chain(full=True)``) with ``--rows``
   entries.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def median_ms(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=200)
    arguments = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="mmauth-trust-"))
    os.environ["MMAUTH_CONFIG_DIR"] = str(scratch / "config")
    os.environ.pop("MMAUTH_KEY_FILE", None)
    try:
        measure(arguments.workspace, scratch, arguments.rows, arguments.repeats)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure(source: Path, scratch: Path, rows: int, repeats: int) -> None:
    import dataclasses
    import json

    from engine.auth.database import ATTEMPT_COLUMNS
    from engine.auth.replay import ReplayGuard
    from engine.auth.store import AttemptRecord, AuditStore
    from engine.core.defences import check_defences
    from engine.core.fileio import file_sha256
    from engine.core.settings import load_settings
    from engine.core.workspace import Workspace
    from engine.models.loading import load_model_bundle
    from engine.models.signing import (
        check_members_enrolled,
        check_trusted,
        record_trusted_manifest,
        sign_manifest,
    )

    workspace = Workspace(scratch / "workspace")
    shutil.copytree(source, workspace.root, ignore=shutil.ignore_patterns("mmauth.db*"))
    manifest = sign_manifest(json.loads(workspace.manifest.read_text()))
    workspace.manifest.write_text(json.dumps(manifest, indent=2))
    digest = file_sha256(workspace.manifest)
    record_trusted_manifest(workspace, digest)
    bundle = load_model_bundle(workspace, require=())
    steps = tuple({"name": n, "status": "passed", "message": "x" * 40} for n in range(8))
    row = AttemptRecord(
        at=time.time(),
        decision="GRANTED",
        reason="ok",
        message="access granted",
        seconds=0.5,
        steps=steps,
        face_path="data/raw/probes/faces/alice/neutral_1.png",
        voice_path="data/raw/probes/voices/alice/yes_approve_1.wav",
        face_sha256="a" * 64,
        voice_sha256="b" * 64,
        claimed_member="alice",
        identified_member="alice",
        category="Books",
        face_score=0.9,
        face_threshold=0.8,
        voice_score=5.0,
        voice_threshold=4.0,
    )
    store = AuditStore(workspace.database)
    for _ in range(rows):
        store.record_attempt(row)
    store.log.check_chain()
    check = median_ms(store.log.check_chain, repeats)
    chained = median_ms(lambda: store.record_attempt(row), repeats)
    values = dataclasses.asdict(row)
    values["steps"] = json.dumps(list(row.steps), default=str)
    insert = f"INSERT INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) VALUES "
    insert += f"({', '.join('?' for _ in ATTEMPT_COLUMNS)})"

    def plain() -> None:
        with store.transaction() as connection:  # the schema-1 insert, for reference
            connection.execute(insert, [values[c] for c in ATTEMPT_COLUMNS])

    plain_ms = median_ms(plain, repeats)
    signature = median_ms(lambda: check_trusted(workspace, manifest, digest), repeats)
    members = median_ms(
        lambda: check_members_enrolled(workspace, [("face", bundle.face), ("voice", bundle.voice)]),
        repeats,
    )
    settings = load_settings(workspace.root)
    guard = ReplayGuard(workspace, settings, store).sync()
    member = sorted(str(m) for m in bundle.face.members_)[0]
    records = sum(len(guard.samples(member, kind)) for kind in ("face", "voice"))
    seals = median_ms(lambda: [guard.samples(member, kind) for kind in ("face", "voice")], repeats)
    defences = median_ms(lambda: check_defences(workspace, settings.auth), repeats)
    entries = store.log.check_chain().entries
    full = median_ms(lambda: AuditStore(workspace.database).log.check_chain(full=True), 5)
    print(
        f"warm attempt: chain check {check:.2f} ms; chained write {chained:.2f} ms vs plain "
        f"insert {plain_ms:.2f} ms (+{chained - plain_ms:.2f} ms); added in all "
        f"{check + chained - plain_ms:.2f} ms"
    )
    print(
        f"warm attempt: seals of {member}'s {records} replay records {seals:.2f} ms; login "
        f"defences against the accepted ones {defences:.2f} ms (once per authenticator)"
    )
    print(
        f"model load: signature + installation record {signature:.2f} ms, members binding "
        f"{members:.2f} ms"
    )
    print(f"process start: whole chain of {entries} entries walked in {full:.1f} ms")


if __name__ == "__main__":
    main()

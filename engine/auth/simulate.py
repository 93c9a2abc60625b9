"""Measured simulation: every probe of data/raw/probes through the real authentication flow, in
campaigns of genuine attempts, impostors, replays and bad files, with Wilson 95% intervals.

engine.auth.campaigns builds the attempts of each campaign; this module runs them, turns their
decisions into rates and saves (and reads back) the report.

Every rate of an impostor, replay or bad-input campaign is a block rate (DENIED / attempts).
Per modality, where that modality is what a campaign tests: the face rate counts attempts whose
face step identified the right member (genuine) or rejected the face (stranger_face); the voice
rate counts, among attempts that reached the voice model (no FTA, no replay), those it accepted
(genuine) or rejected (stranger_face, stranger_voice, cross_member, wrong_phrase).

Simulated attempts never touch the lockout (their order would otherwise change the results) and
are not written to the audit log unless ``audit=True``, which records them with origin
``simulation`` (ignored by lockouts and hidden from ``mmauth history`` by default).
"""

from __future__ import annotations

import dataclasses
import io
import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.auth.campaigns import (
    ATTACK,
    BAD_INPUT,
    CAMPAIGNS,
    GENUINE,
    IMPOSTOR,
    Attempt,
    plan_attempts,
)
from engine.auth.flow import AuthDecision, Authenticator
from engine.auth.words import Origin, Reason, Step
from engine.core.defences import check_defences
from engine.core.errors import InputError, MissingStageError, MmauthError
from engine.core.fileio import atomic_write_files, check_writable, json_bytes
from engine.core.metrics import Rate, rate
from engine.core.progress import Progress, ProgressCallback, check_cancelled, no_progress
from engine.core.settings import Settings
from engine.core.workspace import Workspace, member_folders
from engine.models.names import ModelName

STAGE = "simulate"


@dataclasses.dataclass(frozen=True)
class AttemptOutcome:
    """What the flow decided for one simulated attempt."""

    campaign: str
    face: str
    voice: str
    expected_member: str | None
    granted: bool
    reason: str
    member: str | None
    face_score: float | None
    voice_score: float | None
    correct: bool
    """GRANTED as the expected member (genuine), or DENIED (everything else)."""
    note: str = ""


@dataclasses.dataclass(frozen=True)
class CampaignResult:
    """Rates of one campaign."""

    name: str
    kind: str
    """``genuine``, ``impostor``, ``attack`` or ``bad_input``."""
    description: str
    attempts: int
    granted: int
    denied_by_reason: dict[str, int]
    rate_name: str
    """``authorised success rate`` or ``unauthorised block rate``."""
    overall: Rate
    """The system's rate: GRANTED as the right member (genuine) or DENIED (the rest)."""
    face: Rate
    """Attempts whose face step decided as it should: identified the right member (genuine),
    rejected the face (stranger_face); no trials where the face is not what is measured."""
    voice: Rate
    """Attempts that reached the voice model and that it decided as it should: accepted
    (genuine), rejected (impostors); no trials where the voice is not what is measured."""
    wrong_member_grants: int
    """Genuine attempts GRANTED as another member (a false accept inside the genuine campaign;
    in the other campaigns every grant is one, counted by ``granted``)."""


@dataclasses.dataclass(frozen=True)
class SimulationReport:
    """The whole simulation."""

    campaigns: tuple[CampaignResult, ...]
    authorised_success: Rate
    """Genuine attempts GRANTED as the right member (1 - FNMR of the whole system)."""
    unauthorised_block: Rate
    """Impostor attempts (stranger face, stranger voice, cross-member, wrong phrase) DENIED."""
    replay_block: Rate
    """Replayed enrolment files DENIED (1 - APCER)."""
    bad_input_denied: Rate
    """Bad files DENIED (never GRANTED, never a crash)."""
    members: tuple[str, ...]
    strangers: tuple[str, ...]
    attempts: tuple[AttemptOutcome, ...]
    notes: tuple[str, ...]
    face_backend: str
    seconds: float
    json_path: Path
    csv_path: Path


def run_simulation(
    workspace: Workspace,
    settings: Settings,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
    *,
    audit: bool = False,
) -> SimulationReport:
    """Run every campaign through the authentication flow and save the report."""
    from engine.auth.audit_log import AuditTamperedError
    from engine.auth.replay import ReplayGuard
    from engine.auth.store import open_store
    from engine.models.loading import load_model_bundle

    started = time.perf_counter()
    json_path = workspace.reports_dir / "simulation.json"
    csv_path = workspace.reports_dir / "simulation.csv"
    # The run takes minutes: a report that could not be written, or attempts that would all
    # be refused for loosened defences, must be said before it.
    check_writable(json_path, csv_path)
    check_defences(workspace, settings.auth)
    store = open_store(workspace)
    if audit:
        # Every grant written to a tampered log is refused, so the report would measure the
        # tampering instead of the models (and replace the last good report).
        chain = store.log.check_chain()
        if not chain.intact:
            raise AuditTamperedError(
                f"the audit log is tampered ({'; '.join(chain.problems)}): nothing was run and "
                "the last report is kept. Run mmauth audit verify, then mmauth audit acknowledge"
            )
    bundle = load_model_bundle(
        workspace, require=(ModelName.FACE, ModelName.VOICE), for_inference=True
    )
    members = sorted(str(m) for m in bundle.face.members_)
    face_probes = member_folders(workspace.probe_faces_dir)
    voice_probes = member_folders(workspace.probe_voices_dir)
    if not face_probes or not voice_probes:
        raise MissingStageError(
            f"no probes: put photos in {workspace.relative(workspace.probe_faces_dir)}/<label>/ "
            f"and recordings in {workspace.relative(workspace.probe_voices_dir)}/<label>/"
        )
    features = ProbeFeatures(settings)
    with tempfile.TemporaryDirectory(prefix="mmauth-simulate-") as scratch:
        attempts, notes = plan_attempts(
            workspace, members, face_probes, voice_probes, Path(scratch)
        )
        features.prefetch(
            workspace,
            [a.face for a in attempts],
            [a.voice for a in attempts],
            progress=progress,
            cancel=cancel,
        )
        authenticator = Authenticator(
            workspace,
            settings,
            bundle=bundle,
            store=store,
            features=features,
            replay_guard=ReplayGuard(workspace, settings, store).sync(),
            record=audit,
            lockout=False,
            origin=Origin.SIMULATION if audit else Origin.LIVE,
        )
        outcomes = []
        for index, attempt in enumerate(attempts):
            check_cancelled(cancel, STAGE)
            decision = authenticator.authenticate(attempt.face, attempt.voice)
            if audit and decision.reason == Reason.AUDIT_TAMPERED:
                raise AuditTamperedError(
                    f"the audit log was tampered with during the simulation ({decision.message}): "
                    "the report is not saved. Run mmauth audit verify, then mmauth audit "
                    "acknowledge"
                )
            outcomes.append(_outcome(workspace, attempt, decision))
            progress(
                Progress(
                    STAGE,
                    index + 1,
                    len(attempts),
                    f"{attempt.campaign}: {decision.decision} ({decision.reason})",
                )
            )
    campaigns = tuple(_campaign(name, outcomes) for name in CAMPAIGNS if _has(name, outcomes))
    report = SimulationReport(
        campaigns=campaigns,
        authorised_success=_pooled(outcomes, {GENUINE}),
        unauthorised_block=_pooled(outcomes, {IMPOSTOR}),
        replay_block=_pooled(outcomes, {ATTACK}),
        bad_input_denied=_pooled(outcomes, {BAD_INPUT}),
        members=tuple(members),
        strangers=tuple(sorted((set(face_probes) | set(voice_probes)) - set(members))),
        attempts=tuple(outcomes),
        notes=tuple(notes),
        face_backend=str(bundle.manifest.get("face_backend", settings.face.backend)),
        seconds=time.perf_counter() - started,
        json_path=json_path,
        csv_path=csv_path,
    )
    save_report(report)
    return report


# Features, extracted once ---------------------------------------------------------------------


def _source_name(workspace: Workspace, path: Path) -> str:
    """How a probe is named in progress messages: relative to the workspace, or for a file this
    run made in its scratch folder (a replay or bad input), ``generated/<name>`` since that
    temporary path is gone when anyone reads it."""
    shown = workspace.relative(path)
    return f"generated/{path.name}" if Path(shown).is_absolute() else shown


class ProbeFeatures:
    """Probe features extracted once per file (the batch machinery: cached and parallel),
    then served to the flow; failures keep their kind (no face, no speech, several faces,
    unreadable)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._faces: dict[Path, Any] = {}
        self._voices: dict[Path, Any] = {}

    def prefetch(
        self,
        workspace: Workspace,
        faces: Sequence[Path],
        voices: Sequence[Path],
        *,
        progress: ProgressCallback = no_progress,
        cancel: threading.Event | None = None,
    ) -> None:
        from engine.core.batch import BatchItem, run_batch
        from engine.core.feature_tables import execution_plan
        from engine.faces.extract import face_params, process_face_file
        from engine.voices.extract import process_recording, recording_params

        plan = execution_plan(self.settings)
        for kind, paths, process, params, store in (
            (
                "faces",
                faces,
                process_face_file,
                face_params(self.settings, augment=False),
                self._faces,
            ),
            ("voices", voices, process_recording, recording_params(self.settings), self._voices),
        ):
            unique = sorted({p for p in paths if p.is_file()})
            items = [BatchItem(p, "", "probe", _source_name(workspace, p)) for p in unique]
            results = run_batch(
                items,
                process,
                params,
                stage=f"{STAGE}.{kind}",
                cache_dir=workspace.cache_dir,
                plan=plan,
                progress=progress,
                cancel=cancel,
            )
            for result in results:
                if result.output is None:
                    # The same kind of error the flow's own extraction raises (e.g. several
                    # faces), so the attempt is denied with the reason a live attempt gets.
                    error_type = result.error_type or InputError
                    store[result.item.path] = error_type(result.error or "failed")
                elif kind == "faces":
                    store[result.item.path] = np.asarray(result.output.features[0])
                else:
                    store[result.item.path] = self._voice_sample(result)

    def _voice_sample(self, result: Any) -> Any:
        from engine.voices.audio import phrase_from_filename
        from engine.voices.extract import VoiceSample

        record = result.output.records[0]
        return VoiceSample(
            vector=np.asarray(result.output.features[0]),
            mfcc_sequence=np.asarray(result.output.sequences[0]),
            duration_s=float(record.get("duration_s", 0.0)),
            phrase_hint=phrase_from_filename(result.item.path) or None,
            sample_rate=self.settings.voice.sample_rate,
        )

    def face(self, path: Path) -> Any:
        return self._served(self._faces, path, lambda p: _pipeline_face(p, self.settings))

    def voice(self, path: Path) -> Any:
        return self._served(self._voices, path, lambda p: _pipeline_voice(p, self.settings))

    @staticmethod
    def _served(cache: dict[Path, Any], path: Path, compute: Callable[[Path], Any]) -> Any:
        if path not in cache:
            try:
                cache[path] = compute(path)
            except InputError as error:
                cache[path] = error
        value = cache[path]
        if isinstance(value, MmauthError):
            raise value
        return value


def _pipeline_face(path: Path, settings: Settings) -> Any:
    from engine.faces.extract import face_vector

    return face_vector(path, settings)


def _pipeline_voice(path: Path, settings: Settings) -> Any:
    from engine.voices.extract import voice_sample

    return voice_sample(path, settings)


# Results --------------------------------------------------------------------------------------


def _outcome(workspace: Workspace, attempt: Attempt, decision: AuthDecision) -> AttemptOutcome:
    kind = CAMPAIGNS[attempt.campaign].kind
    if kind == GENUINE:
        correct = decision.granted and decision.member == attempt.expected_member
    else:
        correct = not decision.granted
    face_step, voice_step = decision.step(Step.FACE), decision.step(Step.VOICE)
    return AttemptOutcome(
        campaign=attempt.campaign,
        face=_shown(workspace, attempt.face),
        voice=_shown(workspace, attempt.voice),
        expected_member=attempt.expected_member,
        granted=decision.granted,
        reason=decision.reason,
        member=decision.member,
        face_score=face_step.score,
        voice_score=voice_step.score,
        correct=correct,
        note=attempt.note,
    )


def _shown(workspace: Workspace, path: Path) -> str:
    """Workspace files by their relative path; files made for the simulation by their name."""
    shown = workspace.relative(path)
    return shown if not Path(shown).is_absolute() else f"(generated) {path.name}"


def _has(name: str, outcomes: Sequence[AttemptOutcome]) -> bool:
    return any(o.campaign == name for o in outcomes)


def _campaign(name: str, outcomes: Sequence[AttemptOutcome]) -> CampaignResult:
    campaign = CAMPAIGNS[name]
    kind, measured = campaign.kind, campaign.measured
    mine = [o for o in outcomes if o.campaign == name]
    genuine = kind == GENUINE
    faced = mine if "face" in measured else []
    reached_voice = [o for o in mine if o.voice_score is not None] if "voice" in measured else []
    if genuine:
        face_ok = sum(o.member == o.expected_member for o in faced)
        voice_ok = sum(o.granted for o in reached_voice)
    else:
        face_ok = sum(o.reason in (Reason.NO_FACE, Reason.UNKNOWN_FACE) for o in faced)
        voice_ok = sum(
            o.reason in (Reason.VOICE_MISMATCH, Reason.PHRASE_MISMATCH) for o in reached_voice
        )
    return CampaignResult(
        name=name,
        kind=kind,
        description=campaign.description,
        attempts=len(mine),
        granted=sum(o.granted for o in mine),
        denied_by_reason=dict(Counter(o.reason for o in mine if not o.granted).most_common()),
        rate_name="authorised success rate" if genuine else "unauthorised block rate",
        overall=rate(sum(o.correct for o in mine), len(mine)),
        face=rate(face_ok, len(faced)),
        voice=rate(voice_ok, len(reached_voice)),
        wrong_member_grants=sum(
            o.granted and o.expected_member is not None and o.member != o.expected_member
            for o in mine
        ),
    )


def _pooled(outcomes: Sequence[AttemptOutcome], kinds: set[str]) -> Rate:
    mine = [o for o in outcomes if CAMPAIGNS[o.campaign].kind in kinds]
    return rate(sum(o.correct for o in mine), len(mine))


def report_dict(report: SimulationReport) -> dict[str, Any]:
    """The report as plain JSON values."""
    values = dataclasses.asdict(report)
    values["json_path"] = str(report.json_path)
    values["csv_path"] = str(report.csv_path)
    return values


def save_report(report: SimulationReport) -> None:
    """reports/simulation.json (everything) and reports/simulation.csv (one row per campaign)."""
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["campaign", "kind", "attempts", "granted", "denied_by_reason", "rate"]
    for scope in ("overall", "face", "voice"):
        header += [f"{scope}_{part}" for part in ("value", "low", "high", "count", "trials")]
    writer.writerow(header + ["wrong_member_grants"])
    for campaign in report.campaigns:
        row: list[Any] = [
            campaign.name,
            campaign.kind,
            campaign.attempts,
            campaign.granted,
            ";".join(f"{k}:{v}" for k, v in campaign.denied_by_reason.items()),
            campaign.rate_name,
        ]
        for measured in (campaign.overall, campaign.face, campaign.voice):
            row += [
                _round(measured.value),
                _round(measured.low),
                _round(measured.high),
                measured.count,
                measured.trials,
            ]
        writer.writerow(row + [campaign.wrong_member_grants])
    # Both or neither: the CSV is a view of the JSON.
    atomic_write_files(
        {
            report.json_path: json_bytes(report_dict(report)),
            report.csv_path: buffer.getvalue().encode("utf-8"),
        }
    )


def load_report(workspace: Workspace) -> SimulationReport | None:
    """The last saved simulation (reports/simulation.json), or None when there is none.

    Raises InputError naming the file when it is not a simulation report this version wrote.
    """
    path = workspace.reports_dir / "simulation.json"
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(
            f"cannot read the last simulation: {error}", path=workspace.relative(path)
        ) from None
    try:
        return SimulationReport(
            campaigns=tuple(_campaign_from(c) for c in values["campaigns"]),
            authorised_success=Rate(**values["authorised_success"]),
            unauthorised_block=Rate(**values["unauthorised_block"]),
            replay_block=Rate(**values["replay_block"]),
            bad_input_denied=Rate(**values["bad_input_denied"]),
            members=tuple(values["members"]),
            strangers=tuple(values["strangers"]),
            attempts=tuple(AttemptOutcome(**a) for a in values["attempts"]),
            notes=tuple(values["notes"]),
            face_backend=str(values["face_backend"]),
            seconds=float(values["seconds"]),
            json_path=path,
            csv_path=path.with_suffix(".csv"),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(
            f"not a simulation report of this version ({type(error).__name__}: {error}); "
            "run the simulation again",
            path=workspace.relative(path),
        ) from None


def _campaign_from(values: dict[str, Any]) -> CampaignResult:
    rates = {k: Rate(**values[k]) for k in ("overall", "face", "voice")}
    return CampaignResult(**(values | rates))


def _round(value: float) -> str:
    return "" if value != value else f"{value:.6f}"

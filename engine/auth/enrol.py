"""Enrolling, listing and removing members: their files, templates, customer link and records.

Enrolment checks everything before it changes anything: the name, every input file (each photo
must show a face and each recording hold speech, through the same pipelines as authentication),
and where the files would land. Then it copies the files into ``data/raw/faces/<name>/`` and
``data/raw/voices/<name>/`` (each atomically; files it replaced are restored if a later step
fails), updates the models, records the samples' hashes and fingerprints in the audit store,
and links the member to a customer in members.csv when asked.

Model updates: with the dlib face backend the face features are extracted again (cached: only
the changed photos are processed, and a later ``mmauth train`` sees the same members) and the
new photos' embeddings, with their augmented copies, are added as templates without
retraining (a removed member's are dropped); otherwise (classic
faces, a dlib model after face.backend changed in the settings, and voices, whose model has no
in-place enrolment) the features are extracted again (cached: only the new files are
processed) and the model is retrained. Before any model was
trained, enrolment only stores the files: ``mmauth train`` takes them in.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.auth.enrol_files import (
    copied_into_place,
    destination_folder,
    destination_name,
    plan_copies,
    refuse_replacing,
    validate_member_name,
)
from engine.auth.store import open_store
from engine.core.errors import EnrolmentError, InputError, MissingStageError, UnknownMemberError
from engine.core.progress import Progress, ProgressCallback, check_cancelled, no_progress
from engine.core.settings import Settings
from engine.core.workspace import Workspace, member_folders
from engine.customers.members import read_members, write_members
from engine.models.names import ModelName

if TYPE_CHECKING:
    import numpy as np

    from engine.models.enrolment_check import Misfit

STAGE = "enrol"
_CUSTOMER_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclasses.dataclass(frozen=True)
class EnrolmentResult:
    """What an enrolment changed."""

    member: str
    faces: tuple[str, ...]
    """Photos written, workspace-relative."""
    voices: tuple[str, ...]
    """Recordings written, workspace-relative."""
    replaced: int
    """Files that already existed under the same name and were overwritten."""
    customer_id: str | None
    """The customer linked in members.csv (None when not given)."""
    model_updates: tuple[str, ...]
    """How each model took the new member in (templates added, retrained, or not yet trained)."""
    seconds: float
    notes: tuple[str, ...] = ()
    """Warnings from the model updates, in words: files that fit another member (or the
    member's other phrase) better than their own (engine.models.enrolment_check), thresholds
    that do not fit the enrolled people (engine.models.training.calibration_note)."""


@dataclasses.dataclass(frozen=True)
class RemovalResult:
    """What removing a member changed."""

    member: str
    files_removed: int
    model_updates: tuple[str, ...]
    customer_link_removed: bool


@dataclasses.dataclass(frozen=True)
class MemberInfo:
    """One member as the workspace knows them."""

    name: str
    faces: int
    """Enrolment photos in data/raw/faces/<name>/."""
    voices: int
    """Enrolment recordings in data/raw/voices/<name>/."""
    phrases: tuple[str, ...]
    """Approval phrases (recording stems without the take number)."""
    customer_id: str | None
    """Linked customer from members.csv."""
    enrolled_at: float | None
    """When `mmauth enroll` first added them (None for files placed by hand or the sample)."""
    in_face_model: bool | None
    """Whether the trained face model knows them (None when no model is trained)."""
    in_voice_model: bool | None


# Validation -----------------------------------------------------------------------------------


def validate_customer_id(customer_id: str) -> str:
    customer_id = customer_id.strip()
    if not _CUSTOMER_ID.fullmatch(customer_id):
        raise EnrolmentError(
            f"customer id {customer_id!r} must be 1-64 letters, digits, '_', '-' or '.'"
        )
    return customer_id


# Enrolment ------------------------------------------------------------------------------------


def enrol_member(
    workspace: Workspace,
    settings: Settings,
    name: str,
    faces: Sequence[str | Path] = (),
    voices: Sequence[str | Path] = (),
    customer_id: str | None = None,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
    replace: bool = False,
) -> EnrolmentResult:
    """Add a member, or add files to an existing one (see the module docstring).

    A file named like one the member already has replaces it only with ``replace``; without
    it, ReplacementRefusedError (an EnrolmentError listing the files) before anything changes.
    """
    started = time.perf_counter()
    name = validate_member_name(name)
    if customer_id is not None:
        customer_id = validate_customer_id(customer_id)
        _check_customer_exists(workspace, customer_id)
    face_paths = [Path(p).expanduser() for p in faces]
    voice_paths = [Path(p).expanduser() for p in voices]
    existing = member_folders(workspace.faces_dir).get(name) or member_folders(
        workspace.voices_dir
    ).get(name)
    if not existing:
        _refuse_a_name_like_another(workspace, name)
    if not existing and (not face_paths or not voice_paths):
        raise EnrolmentError(
            f"a new member needs at least one photo and one recording ({len(face_paths)} photos, "
            f"{len(voice_paths)} recordings given)"
        )
    face_folder = destination_folder(workspace, workspace.faces_dir, name)
    voice_folder = destination_folder(workspace, workspace.voices_dir, name)
    plan = plan_copies(workspace, face_paths, face_folder) + plan_copies(
        workspace, voice_paths, voice_folder
    )
    if not replace:
        refuse_replacing(workspace, name, plan)
    total = len(plan) + 3
    _acquire(settings, face_paths, voice_paths, progress=progress, cancel=cancel, total=total)
    check_cancelled(cancel, STAGE)
    with copied_into_place(plan) as replaced:
        progress(Progress(STAGE, len(plan), total, f"copied {len(plan)} files"))
        updates, notes = _update_models_after_enrol(
            workspace, settings, name, face_paths, voice_paths, progress, cancel
        )
    progress(Progress(STAGE, len(plan) + 1, total, "models updated"))
    _record_samples(workspace, settings, name, customer_id, plan)
    if customer_id is not None:
        _link_customer(workspace, name, customer_id)
    progress(Progress(STAGE, total, total, f"{name} enrolled"))
    return EnrolmentResult(
        member=name,
        faces=tuple(workspace.relative(d) for s, d in plan if d.parent == face_folder),
        voices=tuple(workspace.relative(d) for s, d in plan if d.parent == voice_folder),
        replaced=replaced,
        customer_id=customer_id,
        model_updates=tuple(updates),
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
    )


enroll_member = enrol_member
"""The same function under the spelling of the `mmauth enroll` command."""


def _refuse_a_name_like_another(workspace: Workspace, name: str) -> None:
    """EnrolmentError when a new member's name differs from an enrolled one's only in case:
    on a case-insensitive file system the two would share folders, and the face model would
    identify one as the other (a member's own probes were then denied)."""
    enrolled = set(member_folders(workspace.faces_dir)) | set(member_folders(workspace.voices_dir))
    alike = sorted(other for other in enrolled if other.casefold() == name.casefold())
    if alike:
        raise EnrolmentError(
            f"member name {name!r} differs only in case from the enrolled member {alike[0]!r}: "
            f"to add files to that member, enrol them as {alike[0]!r}; otherwise choose "
            "another name. Nothing was changed"
        )


def _acquire(
    settings: Settings,
    face_paths: Sequence[Path],
    voice_paths: Sequence[Path],
    *,
    progress: ProgressCallback,
    cancel: threading.Event | None,
    total: int,
) -> None:
    """Check every input through the authentication pipelines; a file that fails (no face,
    several faces, no speech, unreadable) refuses the whole enrolment (failure to enrol, FTE)."""
    from engine.faces.extract import face_vector
    from engine.voices.extract import voice_sample

    failures: list[str] = []
    for paths, extract in ((face_paths, face_vector), (voice_paths, voice_sample)):
        for path in paths:
            check_cancelled(cancel, STAGE)
            try:
                extract(path, settings)
            except InputError as error:
                # The face pipeline's failures to acquire (no face, several faces) name no file.
                named = error.path is not None
                failures.append(error.message if named else f"file {path.name}: {error.message}")
            progress(Progress(STAGE, 0, total, f"checked {path.name}"))
    if failures:
        raise EnrolmentError(
            "failure to enrol: nothing was changed; fix or leave out these files:",
            details=failures,
        )


def _record_samples(
    workspace: Workspace,
    settings: Settings,
    name: str,
    customer_id: str | None,
    plan: Sequence[tuple[Path, Path]],
) -> None:
    from engine.auth.replay import FACE, VOICE, make_sample

    store = open_store(workspace)
    now = time.time()
    store.upsert_member(name, customer_id, now)
    samples = [
        make_sample(
            workspace,
            settings,
            name,
            FACE if target.parent.parent == workspace.faces_dir else VOICE,
            target,
        )
        for _, target in plan
    ]
    store.put_samples(samples, now)


# members.csv ----------------------------------------------------------------------------------


def _link_customer(workspace: Workspace, name: str, customer_id: str) -> None:
    links = read_members(workspace)
    links[name] = customer_id
    write_members(workspace, links)


def _check_customer_exists(workspace: Workspace, customer_id: str) -> None:
    """Refuse a customer id the merged dataset does not know (when there is one)."""
    if not workspace.merged_dataset.is_file():
        return
    from engine.models.recommend import ID_COLUMN, read_merged_dataset

    known = set(read_merged_dataset(workspace)[ID_COLUMN].astype(str).str.strip())
    if customer_id not in known:
        raise EnrolmentError(
            f"customer {customer_id!r} is not in {workspace.relative(workspace.merged_dataset)} "
            f"({len(known)} customers); check the id or re-run mmauth merge"
        )


# Models ---------------------------------------------------------------------------------------


def _update_models_after_enrol(
    workspace: Workspace,
    settings: Settings,
    name: str,
    face_paths: Sequence[Path],
    voice_paths: Sequence[Path],
    progress: ProgressCallback,
    cancel: threading.Event | None,
) -> tuple[list[str], list[str]]:
    """The model updates in words, and the notes of the checks they ran (see
    ``_update_models``)."""

    destinations = [
        workspace.relative(workspace.faces_dir / name / destination_name(path))
        for path in face_paths
    ]

    def add_templates(model: Any, rows: _FaceRows) -> tuple[Any, dict[str, str]]:
        notes = _identified_as_others(model, rows, name, destinations)
        return _add_face_templates(rows, model, name, destinations), notes

    return _update_models(
        workspace,
        settings,
        name,
        progress,
        cancel,
        face_change=add_templates if face_paths else None,
        voice_changed=bool(voice_paths),
    )


@dataclasses.dataclass(frozen=True)
class _FaceRows:
    """The enrolment rows of data/image_features.csv (one per photo and augmented copy), as
    the dlib face model takes them."""

    features: np.ndarray
    members: np.ndarray
    sources: np.ndarray
    augmented: np.ndarray

    def check(self, member: str) -> tuple[int, list[Misfit]]:
        """The enrolment check over every original photo (training's, so that the model's
        ``enrolment_misfits`` stays current): the count, and the misfits that concern
        ``member``: their photos, or another's photo that looks like them."""
        from engine.models.enrolment_check import face_misfits

        original = ~self.augmented
        found = face_misfits(
            self.features[original], self.members[original], self.sources[original]
        )
        return len(found), [m for m in found if member in (m.member, m.closer_to)]


def _dlib_face_rows(workspace: Workspace, model: Any) -> _FaceRows:
    """The refreshed face table's enrolment rows; refused unless they are dlib embeddings of
    the model's width."""
    from engine.core.feature_tables import feature_matrix, read_feature_table
    from engine.faces.augment import ORIGINAL

    where = workspace.relative(workspace.image_features)
    table = read_feature_table(workspace, workspace.image_features, "feature_")
    table = table[table["role"] == "enrol"]
    features = feature_matrix(table, "feature_")
    backends = set(table["backend"].astype(str)) if "backend" in table else set()
    if backends - {"dlib"} or features.shape[1] != model.templates_.shape[1]:
        raise EnrolmentError(
            f"{where} holds {', '.join(sorted(backends)) or 'other'} face features, not the "
            "dlib embeddings of the face model: set face.backend to match the model, or run "
            "mmauth train to retrain it; nothing was changed"
        )
    return _FaceRows(
        features=features,
        members=table["member"].astype(str).to_numpy(),
        sources=table["source"].astype(str).to_numpy(),
        augmented=(table["augmentation"] != ORIGINAL).to_numpy(),
    )


def _identified_as_others(
    model: Any, rows: _FaceRows, name: str, destinations: Sequence[str]
) -> dict[str, str]:
    """Notes (by photo) on the new photos that the face model, before taking them in, already identifies
    as another member (at its own threshold). The enrolment check compares a photo with the
    member's other photos, so it cannot judge a newcomer's only photo; the model's decision
    can, and it is the decision logins will get."""
    import numpy as np

    from engine.models.enrolment_check import CONSEQUENCES

    new = np.isin(rows.sources, destinations) & ~rows.augmented
    if not new.any():
        return {}
    scores = model.decision_function(rows.features[new])
    best = scores.argmax(axis=1)
    threshold = float(model.threshold_)
    notes = {}
    for source, column, row in zip(rows.sources[new], best, scores, strict=True):
        other, score = str(model.members_[column]), float(row[column])
        if other != name and score >= threshold:
            notes[str(source)] = (
                f"face: {source}, enrolled as {name}, is identified by the face model as "
                f"{other} (score {score:.3f} >= threshold {threshold:.3f}) "
                f"({CONSEQUENCES['face']}). Check the file; if it is not {name}'s, run mmauth "
                f"remove {name} and enrol them again with their own photos."
            )
    return notes


def _add_face_templates(rows: _FaceRows, model: Any, name: str, destinations: Sequence[str]) -> Any:
    """The dlib face model with the member's new photos (``destinations``, workspace-relative)
    added as templates: their rows of the face table and augmented copies, as training makes
    them."""
    import numpy as np

    new = np.isin(rows.sources, destinations)
    missing = sorted(set(destinations) - set(rows.sources[new]))
    if missing:
        raise EnrolmentError(
            f"{', '.join(missing)} got no face features (see data/image_features.csv's "
            "report); nothing was enrolled"
        )
    return model.enrol(name, rows.features[new], rows.sources[new], rows.augmented[new])


def _update_models(
    workspace: Workspace,
    settings: Settings,
    member: str,
    progress: ProgressCallback,
    cancel: threading.Event | None,
    *,
    face_change: Callable[[Any, _FaceRows], tuple[Any, dict[str, str]]] | None,
    voice_changed: bool,
    removing: bool = False,
) -> tuple[list[str], list[str]]:
    """Bring the trained models up to date with the enrolment folders: the dlib face model
    takes templates in place (``face_change``: the updated model, from the refreshed face
    table's rows, and its notes by photo), then the enrolment check runs again over every
    photo; otherwise the features are extracted again (cached: only changed files are
    processed) and the model is retrained. The voice model has no in-place
    enrolment, so it is always retrained.
    ``removing``: the member's folders are already set aside, so the models still knowing them
    is expected, not refused. Returns the updates in words and the notes (training's, or the
    face check's on ``member``)."""
    import copy

    from engine.models.enrolment_check import enrolment_notes
    from engine.models.loading import load_model_bundle
    from engine.models.saving import ModelRecord, save_models

    try:
        bundle = load_model_bundle(workspace, require=(), check_members=not removing)
    except MissingStageError:
        return ["no models yet: run mmauth features, then mmauth train, to include this member"], []
    updates: list[str] = []
    notes: list[str] = []
    retrain: list[str] = []
    for kind, changed in (
        (ModelName.FACE, face_change is not None),
        (ModelName.VOICE, voice_changed),
    ):
        if not changed:
            continue
        if getattr(bundle, kind) is None:
            updates.append(f"{kind}: no model trained yet; mmauth train will include the files")
        elif kind == ModelName.FACE and face_change is not None and _in_place(bundle, settings):
            from engine.faces.extract import extract_face_features

            # The face table is refreshed first (cached: only changed photos are processed), so
            # that the templates come from it and a later mmauth train sees the same members.
            extract_face_features(workspace, settings, progress=progress, cancel=cancel)
            entry = bundle.manifest["models"][ModelName.FACE]
            rows = _dlib_face_rows(workspace, bundle.face)
            updated, change_notes = face_change(copy.deepcopy(bundle.face), rows)
            misfit_count, concern = rows.check(member)
            notes += enrolment_notes("face", concern)
            # A photo both checks name is noted once, by the enrolment check.
            named = {m.source for m in concern}
            notes += [note for source, note in change_notes.items() if source not in named]
            record = ModelRecord(
                name=ModelName.FACE,
                model=updated,
                metrics={**entry.get("metrics", {}), "enrolment_misfits": misfit_count},
                inputs=entry.get("inputs", {}),
                backend=entry.get("backend", "dlib"),
            )
            save_models(workspace, [record], settings)
            updates.append("face: templates updated without retraining (dlib)")
        else:
            retrain.append(kind)
    if retrain:
        notes += _retrain(workspace, settings, tuple(retrain), progress, cancel)
        updates += [
            f"{kind}: features extracted and model retrained{_backend_change(bundle, kind, settings)}"
            for kind in retrain
        ]
    return updates, notes


def _in_place(bundle: Any, settings: Settings) -> bool:
    """Whether the face model takes the change as templates: only a dlib model, and only while
    the settings still extract dlib features (after face.backend changes, retraining with the
    new backend is what mmauth train would do, and in-place templates would be refused)."""
    return getattr(bundle.face, "backend", "") == "dlib" and settings.face.backend == "dlib"


def _backend_change(bundle: Any, kind: str, settings: Settings) -> str:
    """Why a face model was retrained rather than updated, when the settings changed its
    backend (empty otherwise)."""
    was = getattr(getattr(bundle, kind), "backend", None)
    if kind != ModelName.FACE or was in (None, settings.face.backend):
        return ""
    return f" with {settings.face.backend} features (face.backend in the settings; the model had {was})"


def _retrain(
    workspace: Workspace,
    settings: Settings,
    which: tuple[str, ...],
    progress: ProgressCallback,
    cancel: threading.Event | None,
) -> list[str]:
    """Extract the features of ``which`` models again and retrain them; the training notes."""
    from engine.models.training import train_models

    if ModelName.FACE in which:
        from engine.faces.extract import extract_face_features

        extract_face_features(workspace, settings, progress=progress, cancel=cancel)
    if ModelName.VOICE in which:
        from engine.voices.extract import extract_voice_features

        extract_voice_features(workspace, settings, progress=progress, cancel=cancel)
    return list(
        train_models(workspace, settings, which=which, progress=progress, cancel=cancel).notes
    )


# Removal and listing --------------------------------------------------------------------------


def remove_member(
    workspace: Workspace,
    settings: Settings,
    name: str,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> RemovalResult:
    """Remove a member's files, templates (model update), customer link and stored samples.

    Past attempts stay in the audit log: it is append-only.
    """
    name = validate_member_name(name)
    folders = [
        destination_folder(workspace, parent, name)
        for parent in (workspace.faces_dir, workspace.voices_dir)
    ]
    links = read_members(workspace)
    store = open_store(workspace)
    known_to_store = any(m.name == name for m in store.members())
    if not any(f.is_dir() for f in folders) and name not in links and not known_to_store:
        raise UnknownMemberError(
            f"there is no member named {name!r} in this workspace (no enrolment folder, "
            "members.csv row or enrolment record): mmauth members lists the members"
        )
    staged = Path(tempfile.mkdtemp(prefix="mmauth-remove-", dir=workspace.root))
    moved: list[tuple[Path, Path]] = []
    try:
        for index, folder in enumerate(folders):
            if folder.is_dir():
                target = staged / str(index)
                os.replace(folder, target)
                moved.append((folder, target))
        updates, _ = _update_models(
            workspace,
            settings,
            name,
            progress,
            cancel,
            face_change=lambda model, _rows: (model.remove(name), {}),
            voice_changed=True,
            removing=True,
        )
    except BaseException:
        for folder, target in moved:
            os.replace(target, folder)
        shutil.rmtree(staged, ignore_errors=True)
        raise
    files = sum(len(list(target.iterdir())) for _, target in moved)
    shutil.rmtree(staged, ignore_errors=True)
    link_removed = links.pop(name, None) is not None
    if link_removed:
        write_members(workspace, links)
    store.remove_member(name)
    return RemovalResult(
        member=name,
        files_removed=files,
        model_updates=tuple(updates),
        customer_link_removed=link_removed,
    )


def list_members(workspace: Workspace) -> list[MemberInfo]:
    """Every member with enrolment files, a customer link or a store record, by name."""
    from engine.voices.audio import phrase_from_filename

    faces = member_folders(workspace.faces_dir)
    voices = member_folders(workspace.voices_dir)
    links = read_members(workspace)
    records = {m.name: m for m in open_store(workspace).members()}
    face_members, voice_members = _model_members(workspace)
    # Members only a model knows are listed too: authentication refuses such models.
    names = sorted(
        set(faces)
        | set(voices)
        | set(links)
        | set(records)
        | (face_members or set())
        | (voice_members or set())
    )
    return [
        MemberInfo(
            name=name,
            faces=len(faces.get(name, [])),
            voices=len(voices.get(name, [])),
            phrases=tuple(sorted({phrase_from_filename(p) for p in voices.get(name, [])})),
            customer_id=links.get(name) or None,
            enrolled_at=records[name].enrolled_at if name in records else None,
            in_face_model=None if face_members is None else name in face_members,
            in_voice_model=None if voice_members is None else name in voice_members,
        )
        for name in names
    ]


def _model_members(workspace: Workspace) -> tuple[set[str] | None, set[str] | None]:
    from engine.models.loading import load_model_bundle

    try:
        bundle = load_model_bundle(workspace, require=(), check_members=False)
    except MissingStageError:
        return None, None
    return tuple(  # type: ignore[return-value]
        None if model is None else {str(m) for m in model.members_}
        for model in (bundle.face, bundle.voice)
    )

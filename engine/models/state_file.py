"""A model's state as one ``.npz`` file: fast to load, and loading never runs code from it.

skops is the models' reference format, but importing it imports every scikit-learn estimator
(skops builds its trusted-type list from ``sklearn.utils.all_estimators``): about as long as
Python, numpy, scikit-learn and dlib together take to start, on every cold login (figures in
docs/BENCHMARKS.md, "Cold and warm login"). This format holds the same object tree as JSON (an
array named ``tree``) with every numpy array stored beside it in the same ``.npz``, read with
``allow_pickle=False``. Only the classes of ``LIBRARY_TYPES`` and of our own model modules are
ever built, by restoring their attribute dictionaries as unpickling would, without calling
their constructors; a class whose state is anything else makes ``dumps`` refuse the model, which
is then kept in skops alone.
"""

from __future__ import annotations

import importlib
import io
import json
import math
import zipfile
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np

from engine.core.errors import ModelIntegrityError

LIBRARY_TYPES = frozenset(
    {
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._tree.Tree",
        "sklearn.decomposition._pca.PCA",
        "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
    }
)
"""Library classes a state file may hold: those of our models' pipelines whose state is plain
attributes (arrays, numbers, strings), and dlib-free scikit-learn trees."""
REDUCED_TYPES = frozenset({"sklearn.tree._tree.Tree"})
"""Extension types rebuilt from their constructor arguments and state (``__reduce__``)."""
TREE = "tree"
"""The npz entry holding the JSON object tree."""


class NotStorable(ValueError):
    """The model holds something this format does not store (it stays in skops alone)."""


def dumps(model: Any, own_types: Collection[str]) -> bytes:
    """The state file of ``model``; NotStorable when it holds anything outside the format."""
    arrays = _ArrayStore()
    tree = _encode(model, arrays, LIBRARY_TYPES | frozenset(own_types))
    buffer = io.BytesIO()
    encoded = np.frombuffer(json.dumps(tree).encode("utf-8"), dtype=np.uint8)
    entries: dict[str, Any] = {TREE: encoded, **arrays.entries()}
    np.savez(buffer, **entries)
    return buffer.getvalue()


def loads(
    data: bytes,
    own_types: Collection[str],
    *,
    source: str,
    twins: Mapping[str, Callable[[dict[str, Any]], Any]] | None = None,
) -> Any:
    """Build the model of a state file, refusing any class outside the allow-list. With
    ``twins`` (class path -> builder from the object's state, engine.models._twins), an allowed
    library object is built as its inference twin, so that scoring needs no scikit-learn."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            entries = {name: stored[name] for name in stored.files}
        tree = json.loads(entries.pop(TREE).tobytes().decode("utf-8"))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise ModelIntegrityError(
            f"{source} is not a readable model state file: {error}"
        ) from error
    allowed = LIBRARY_TYPES | frozenset(own_types)
    try:
        return _Decoder(entries, allowed, twins or {}, source).decode(tree)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ModelIntegrityError(f"{source} is not a valid model state file: {error}") from error


class _ArrayStore:
    """The arrays of a model, concatenated per dtype into one npz entry each: a forest holds
    hundreds of small arrays, and every npz entry costs a header to parse when loading."""

    def __init__(self) -> None:
        self.groups: list[list[np.ndarray]] = []
        self.sizes: list[int] = []

    def add(self, array: np.ndarray) -> list[Any]:
        """Store an array; its reference is [entry number, first element, shape]."""
        group = next((n for n, g in enumerate(self.groups) if g[0].dtype == array.dtype), None)
        if group is None:
            group = len(self.groups)
            self.groups.append([])
            self.sizes.append(0)
        start = self.sizes[group]
        self.groups[group].append(array.ravel())
        self.sizes[group] += array.size
        return [group, start, list(array.shape)]

    def entries(self) -> dict[str, np.ndarray]:
        return {f"g{n}": np.concatenate(group) for n, group in enumerate(self.groups)}


def _stored_array(entries: dict[str, np.ndarray], reference: list[Any]) -> np.ndarray:
    group, start, shape = reference
    size = math.prod(shape)
    return entries[f"g{int(group)}"][start : start + size].reshape(shape)


def _encode(value: Any, arrays: _ArrayStore, allowed: frozenset[str]) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        kind = "scalar" if isinstance(value, np.generic) else "array"
        if array.dtype.hasobject:
            if not all(isinstance(item, str) for item in array.flat):
                raise NotStorable("an object array holding more than strings")
            array, kind = array.astype(str), "strings"
        return {kind: arrays.add(array)}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.dtype):
        if value.fields is not None or value.hasobject:
            raise NotStorable(f"dtype {value}")
        return {"dtype": value.str}
    if isinstance(value, list | tuple):
        return {type(value).__name__: [_encode(item, arrays, allowed) for item in value]}
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise NotStorable("a dictionary with keys that are not strings")
        return {"dict": {key: _encode(item, arrays, allowed) for key, item in value.items()}}
    class_path = f"{type(value).__module__}.{type(value).__qualname__}"
    if class_path not in allowed:
        raise NotStorable(class_path)
    if class_path in REDUCED_TYPES:
        _, arguments, state = value.__reduce__()
        return {
            "reduce": class_path,
            "arguments": _encode(arguments, arrays, allowed),
            "state": _encode(state, arrays, allowed),
        }
    state = value.__getstate__()
    if not isinstance(state, dict):
        raise NotStorable(f"{class_path} (its state is not an attribute dictionary)")
    return {"object": class_path, "state": _encode(state, arrays, allowed)}


class _Decoder:
    """Builds the objects of a JSON tree, with its arrays, classes checked and twins chosen."""

    def __init__(
        self,
        entries: dict[str, np.ndarray],
        allowed: frozenset[str],
        twins: Mapping[str, Callable[[dict[str, Any]], Any]],
        source: str,
    ) -> None:
        self.entries = entries
        self.allowed = allowed
        self.twins = twins
        self.source = source

    def decode(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        tag, content = next(iter(node.items()))  # the tag comes first (reduce has more keys)
        if tag == "array":
            return _stored_array(self.entries, content)
        if tag == "scalar":
            return _stored_array(self.entries, content)[()]
        if tag == "strings":
            return _stored_array(self.entries, content).astype(object)
        if tag == "dtype":
            return np.dtype(content)
        if tag == "list":
            return [self.decode(item) for item in content]
        if tag == "tuple":
            return tuple(self.decode(item) for item in content)
        if tag == "dict":
            return {key: self.decode(item) for key, item in content.items()}
        if tag in ("object", "reduce") and (tag == "reduce") == (content in REDUCED_TYPES):
            return self._built(tag, content, node)
        raise ValueError(f"unknown node {tag!r}")

    def _built(self, tag: str, class_path: Any, node: dict[str, Any]) -> Any:
        if class_path not in self.allowed:
            raise ModelIntegrityError(
                f"{self.source} holds a {class_path}, which is not on the allow-list; refused. "
                "Re-run mmauth train."
            )
        state = self.decode(node["state"])
        twin = self.twins.get(class_path)
        built = twin(state) if twin is not None else None
        if built is not None:
            return built
        cls = _allowed_class(class_path, self.source)
        if tag == "reduce":
            built = cls(*self.decode(node["arguments"]))
            built.__setstate__(state)
            return built
        built = object.__new__(cls)  # as unpickling does: no constructor runs
        _set_state(built)(state)
        return built


def _allowed_class(class_path: str, source: str) -> type[Any]:
    module_name, _, name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), name)
    if not isinstance(cls, type):
        raise ModelIntegrityError(f"{source} names {class_path}, which is not a class; refused")
    return cls


def _set_state(built: Any) -> Callable[[dict[str, Any]], None]:
    """How unpickling restores an attribute dictionary: ``__setstate__`` when the class has one
    (scikit-learn's checks the library version), else the instance dictionary."""
    setter = getattr(built, "__setstate__", None)
    return setter if setter is not None else built.__dict__.update

"""The engine's stages import downward only: core -> faces / voices / customers -> models ->
auth / reports -> sample -> the front ends (docs/ARCHITECTURE.md, "Layers")."""

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parent.parent / "engine"

# Each stage, with the stages it may import from (itself always included).
LAYER = {
    "core": 0,
    "faces": 1,
    "voices": 1,
    "customers": 1,
    "models": 2,
    "auth": 3,
    "reports": 3,
    "sample": 4,
}
# Stages on the same layer stay independent of each other.
SAME_LAYER_ALLOWED: set[tuple[str, str]] = set()


def imported_engine_stages(path: Path) -> set[tuple[str, int]]:
    """Every ``engine.<stage>`` module a file imports, anywhere in it (lazy imports count)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "engine" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


def engine_files() -> list[Path]:
    return sorted(ENGINE.rglob("*.py"))


def test_engine_root_holds_only_its_init() -> None:
    assert sorted(p.name for p in ENGINE.glob("*.py")) == ["__init__.py"]
    assert sorted(
        p.name for p in ENGINE.iterdir() if p.is_dir() and p.name != "__pycache__"
    ) == sorted(LAYER)


@pytest.mark.parametrize("path", engine_files(), ids=lambda p: str(p.relative_to(ENGINE)))
def test_no_import_runs_upward_or_sideways(path: Path) -> None:
    relative = path.relative_to(ENGINE)
    if len(relative.parts) == 1:
        return
    stage = relative.parts[0]
    for target, line in imported_engine_stages(path):
        assert target in LAYER, f"{relative}:{line} imports engine.{target}, which is no stage"
        if target == stage:
            continue
        assert LAYER[target] < LAYER[stage] or (stage, target) in SAME_LAYER_ALLOWED, (
            f"{relative}:{line} imports engine.{target} (layer {LAYER[target]}) from "
            f"engine.{stage} (layer {LAYER[stage]}): imports run downward only"
        )


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from engine.auth.flow import authenticate\n")
    assert ("auth", 2) in imported_engine_stages(module)

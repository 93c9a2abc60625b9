"""The engine stays headless, and `mmauth --help` stays light."""

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import engine

REPO_ROOT = Path(__file__).resolve().parent.parent
FRONT_END_MODULES = ("textual", "rich", "typer")
HEAVY_MODULES = ("sklearn", "librosa", "textual")


def engine_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(engine.__path__, prefix="engine."))


def loaded_modules(code: str) -> set[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(output.strip().splitlines()[-1]))


def test_every_engine_module_imports_without_front_end_libraries() -> None:
    modules = engine_modules()
    assert "engine.core.settings" in modules
    imports = "\n".join(f"import {name}" for name in modules)
    loaded = loaded_modules(imports)
    leaked = sorted(m for m in loaded if m.split(".")[0] in FRONT_END_MODULES)
    assert not leaked, f"engine imports front-end libraries: {leaked[:5]}"


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "from cli.main import create_app\n"
        "from typer.testing import CliRunner\n"
        "result = CliRunner().invoke(create_app(), ['--help'])\n"
        "assert result.exit_code == 0, result.output"
    )
    loaded = loaded_modules(code)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY_MODULES)
    assert not heavy, f"mmauth --help imported {heavy[:5]}"

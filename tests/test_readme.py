"""The README's quickstart and CI stay in step."""

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def quickstart_commands() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quickstart_is_exactly_two_commands() -> None:
    commands = quickstart_commands()
    assert len(commands) == 2
    assert commands[0].endswith("mmauth demo --workspace demo-workspace")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci_script = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert quickstart_commands()[1] in ci_script.splitlines()
    assert "MMAUTH_REQUIRE_SHARED=1" in ci_script
    assert "ruff check" in ci_script and "ruff format --check" in ci_script


def test_the_demo_figures_quoted_are_the_last_measured() -> None:
    readme = " ".join((REPO_ROOT / "README.md").read_text(encoding="utf-8").split())
    benchmarks = " ".join(
        (REPO_ROOT / "docs" / "BENCHMARKS.md").read_text(encoding="utf-8").split()
    )
    quoted = re.search(
        r"(\d+) of (\d+) genuine attempts granted, (\d+) of (\d+) unauthorised attempts blocked",
        readme,
    )
    measured = re.findall(
        r"Demo \(`mmauth demo`[^)]*\): (\d+)/(\d+) granted[^,]*, (\d+)/(\d+) blocked", benchmarks
    )
    assert quoted is not None and measured
    assert quoted.groups() == measured[-1]

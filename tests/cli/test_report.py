import json

from typer.testing import CliRunner

from cli.main import create_app
from engine.core.workspace import Workspace
from tests.engine.model_fixtures import write_merged_dataset

runner = CliRunner()


def test_report_json_lists_sections_and_what_is_missing(workspace: Workspace) -> None:
    write_merged_dataset(workspace)
    result = runner.invoke(create_app(), ["report", "-w", str(workspace.root), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["html"] == "reports/report.html"
    assert (workspace.reports_dir / "report.html").is_file()
    sections = {s["title"]: s for s in shown["sections"]}
    customers = sections["Customers (data/merged_dataset.csv)"]
    assert customers["figures"] >= 3 and not customers["missing"]
    assert "run mmauth train" in sections["Models (models/training_summary.csv)"]["missing"]
    assert all((workspace.root / figure).is_file() for figure in shown["figures"])


def test_report_prints_a_line_per_section(workspace: Workspace) -> None:
    result = runner.invoke(create_app(), ["report", "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.stdout.split())
    assert "data/merged_dataset.csv is missing: run mmauth merge" in printed
    assert "Wrote reports/report.html with 0 figures" in printed

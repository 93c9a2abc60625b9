import json
import re

import pytest
from typer.testing import CliRunner

from cli.main import create_app
from engine.core.workspace import Workspace
from tests.customer_tables import (
    ASSIGNMENT_FILES,
    ASSIGNMENT_JOINED_ROWS,
    ASSIGNMENT_MAPPING,
    ASSIGNMENT_PROFILES,
    ASSIGNMENT_TRANSACTIONS,
    PROFILE_FILES,
    write_customer_tables,
)

runner = CliRunner()


def one_line(text: str) -> str:
    """Rich wraps long messages at the terminal width; tests read them as one line."""
    return " ".join(text.split())


def test_merge_prints_a_summary_for_people(workspace: Workspace) -> None:
    write_customer_tables(workspace, ASSIGNMENT_FILES)
    result = runner.invoke(create_app(), ["merge", "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    shown = one_line(result.stdout)
    assert "Customer merge (assignment shape)" in shown
    assert f"Joined rows: {ASSIGNMENT_JOINED_ROWS} after cleaning" in shown
    assert "drop_duplicates" in shown and "impute_median" in shown
    assert "for 2 customers" in shown
    assert workspace.merged_dataset.is_file() and workspace.merge_report.is_file()


def test_merge_json_is_the_saved_report(workspace: Workspace) -> None:
    write_customer_tables(workspace, PROFILE_FILES)
    result = runner.invoke(create_app(), ["merge", "-w", str(workspace.root), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["ok"] is True
    assert shown["report"]["shape"] == "profile"
    assert shown["report"]["customers_out"] == 2
    assert shown["report"] == json.loads(workspace.merge_report.read_text(encoding="utf-8"))


def test_merge_names_missing_and_ignored_columns(workspace: Workspace) -> None:
    profiles = ASSIGNMENT_PROFILES.replace(",engagement_score,", ",mood,")
    write_customer_tables(workspace, {**ASSIGNMENT_FILES, "customer_social_profiles.csv": profiles})
    result = runner.invoke(create_app(), ["merge", "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    shown = one_line(result.stdout)
    assert (
        "Note: data/raw/customers/customer_social_profiles.csv lacks the expected column(s) "
        "engagement_score: merged without them" in shown
    )
    assert "Note: data/raw/customers/customer_social_profiles.csv: column(s) mood ignored" in shown
    as_json = json.loads(
        runner.invoke(create_app(), ["merge", "-w", str(workspace.root), "--json"]).stdout
    )
    assert as_json["report"]["missing_columns"]["profiles"] == ["engagement_score"]
    assert [note.split(" ")[1:3] for note in as_json["notes"]] == [
        ["lacks", "the"],
        ["column(s)", "mood"],
    ]


def test_global_workspace_option_works_for_merge(workspace: Workspace) -> None:
    write_customer_tables(workspace, PROFILE_FILES)
    result = runner.invoke(create_app(), ["-w", str(workspace.root), "merge", "--json"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"customer_transactions.csv": None}, r"customers: missing file"),
        ({"customer_social_profiles.csv": ""}, r"customer_social_profiles.csv: the file is empty"),
        (
            {"customer_transactions.csv": ASSIGNMENT_TRANSACTIONS.replace("product_category", "c")},
            r"customer_transactions.csv, column 'product_category', row 1: missing column",
        ),
        (
            {"customer_transactions.csv": ASSIGNMENT_TRANSACTIONS.replace(",50,", ",lots,")},
            r"customer_transactions.csv, column 'purchase_amount', row 4: 'lots' is not a number",
        ),
        (
            {"id_mapping.csv": ASSIGNMENT_MAPPING.replace("A", "Z")},
            r"id_mapping.csv, column 'customer_id_new', row 2: the id mapping maps to nowhere",
        ),
    ],
)
def test_bad_input_exits_2_naming_file_column_row(
    workspace: Workspace, changes: dict[str, str | None], expected: str
) -> None:
    write_customer_tables(workspace, {**ASSIGNMENT_FILES, **changes})

    result = runner.invoke(create_app(), ["merge", "-w", str(workspace.root)])
    assert result.exit_code == 2
    assert re.search(expected, one_line(result.stderr)), result.stderr
    assert "Bad input" in result.stderr

    as_json = runner.invoke(create_app(), ["merge", "-w", str(workspace.root), "--json"])
    assert as_json.exit_code == 2
    error = json.loads(as_json.stdout)
    assert error["ok"] is False and re.search(expected, error["error"]["message"])
    assert not workspace.merged_dataset.exists() and not workspace.merge_report.exists()


def test_bom_and_semicolons_merge_from_the_cli(workspace: Workspace) -> None:
    folder = write_customer_tables(
        workspace, {name: text.replace(",", ";") for name, text in ASSIGNMENT_FILES.items()}
    )
    bom = folder / "customer_social_profiles.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    result = runner.invoke(create_app(), ["merge", "-w", str(workspace.root), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["report"]["joined_rows"] == ASSIGNMENT_JOINED_ROWS


def test_an_output_that_cannot_be_written_exits_2_and_writes_neither(
    workspace: Workspace,
) -> None:
    write_customer_tables(workspace, PROFILE_FILES)
    workspace.merged_dataset.mkdir(parents=True)
    result = runner.invoke(create_app(), ["merge", "-w", str(workspace.root)])
    assert result.exit_code == 2, result.output
    assert (
        "Cannot write: cannot write data/merged_dataset.csv: it is a folder, not a file"
        in one_line(result.stderr)
    )
    assert not workspace.merge_report.exists()  # the report would describe another dataset

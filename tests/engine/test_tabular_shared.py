"""The merge on the original assignment's tables (../shared/datasets/customers)."""

from pathlib import Path

import pandas as pd

from engine.core.settings import Settings
from engine.core.workspace import Workspace
from engine.customers.merge import merge_customers


def link_shared_tables(workspace: Workspace, shared_customers: Path) -> None:
    """Put the real tables into the workspace as symlinks (never copies into the repository)."""
    workspace.customers_dir.mkdir(parents=True)
    for table in shared_customers.glob("*.csv"):
        (workspace.customers_dir / table.name).symlink_to(table)


def test_shared_tables_join_to_301_rows_for_54_customers(
    workspace: Workspace, shared_customers: Path
) -> None:
    link_shared_tables(workspace, shared_customers)
    report = merge_customers(workspace, Settings())

    assert report.shape == "assignment"
    assert report.rows_in == {"profiles": 155, "transactions": 150, "mapping": 155}
    assert report.duplicates_dropped == {"profiles": 5, "transactions": 0, "mapping": 6}
    # The join through the mapping on the tables as handed out: 301 rows for 54 customers.
    assert report.joined_rows_as_given == 301
    assert report.customers_out == report.rows_out == 54
    # Without the exact duplicate rows (5 profile rows, 6 mapping rows) 17 of those are copies.
    assert report.joined_rows == 284
    assert report.ids_in == {
        "profiles": 84,
        "transactions": 75,
        "mapping_transaction_ids": 79,
        "mapping_profile_ids": 73,
    }
    assert report.unaccounted_rows() == {"profiles": 0, "transactions": 0, "mapping": 0}
    assert [(a.column, a.count) for a in report.cleaning if a.action == "impute_median"] == [
        ("customer_rating", 10)
    ]

    merged = pd.read_csv(workspace.merged_dataset, dtype={"customer_id": str})
    assert merged["customer_id"].is_unique and len(merged) == 54
    assert merged["customer_id"].str.fullmatch(r"A\d+").all()  # the profile id space
    assert not merged.isna().any().any()
    assert set(merged["preferred_category"]) <= {
        "Sports",
        "Electronics",
        "Clothing",
        "Groceries",
        "Books",
    }


def test_strip_the_prefix_is_not_the_mapping(workspace: Workspace, shared_customers: Path) -> None:
    """Legacy 195 maps to A105, not A195: a join that strips the A reaches other customers."""
    link_shared_tables(workspace, shared_customers)
    merge_customers(workspace, Settings())
    merged_ids = set(pd.read_csv(workspace.merged_dataset, dtype=str)["customer_id"])
    transactions = pd.read_csv(shared_customers / "customer_transactions.csv", dtype=str)
    profiles = pd.read_csv(shared_customers / "customer_social_profiles.csv", dtype=str)
    stripped = {f"A{legacy}" for legacy in transactions["customer_id_legacy"]}
    assert stripped & set(profiles["customer_id_new"]) != merged_ids

import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import event, given, settings, strategies as st

from engine.core.errors import ConfigError, InputError
from engine.core.settings import MergeSettings, Settings, load_settings
from engine.core.workspace import Workspace
from engine.customers.merge import merge_customers
from tests.customer_tables import (
    ASSIGNMENT_FILES,
    ASSIGNMENT_JOINED_ROWS,
    ASSIGNMENT_JOINED_ROWS_AS_GIVEN,
    ASSIGNMENT_MAPPING,
    ASSIGNMENT_PROFILES,
    ASSIGNMENT_TRANSACTIONS,
    PROFILE_FILES,
    PROFILE_PROFILES,
    PROFILE_TRANSACTIONS,
    write_customer_tables,
)


def merged_rows(workspace: Workspace) -> dict[str, dict]:
    frame = pd.read_csv(workspace.merged_dataset, dtype={"customer_id": str})
    return frame.set_index("customer_id").to_dict("index")


def test_assignment_shape_join_through_the_mapping(workspace: Workspace) -> None:
    write_customer_tables(workspace, ASSIGNMENT_FILES)
    report = merge_customers(workspace, Settings())

    assert report.shape == "assignment"
    assert report.rows_in == {"profiles": 5, "transactions": 5, "mapping": 6}
    assert report.duplicates_dropped == {"profiles": 1, "transactions": 0, "mapping": 1}
    assert report.row_outcomes["transactions"] == {
        "duplicate": 0,
        "missing_category": 0,
        "matched": 3,
        "id_not_in_mapping": 1,
        "no_profile": 1,
    }
    assert report.row_outcomes["profiles"] == {"duplicate": 1, "matched": 3, "no_transactions": 1}
    assert report.row_outcomes["mapping"] == {
        "duplicate": 1,
        "used": 3,
        "id_without_transactions": 1,
        "id_without_profile": 1,
    }
    assert report.unaccounted_rows() == {"profiles": 0, "transactions": 0, "mapping": 0}
    assert report.joined_rows == ASSIGNMENT_JOINED_ROWS
    assert report.joined_rows_as_given == ASSIGNMENT_JOINED_ROWS_AS_GIVEN
    assert report.many_to_many["transaction_ids_to_several_customers"] == 1  # legacy 10
    assert report.many_to_many["customers_from_several_transaction_ids"] == 1  # A1
    assert report.unmatched_id_examples == {"profiles": ["A3"], "transactions": ["30", "40"]}
    assert (report.customers_out, report.rows_out) == (2, 2)

    rows = merged_rows(workspace)
    assert set(rows) == {"A1", "A2"}
    assert rows["A1"]["transaction_count"] == 3
    assert rows["A1"]["purchase_amount_sum"] == 350
    assert rows["A1"]["profile_rows"] == 2  # the duplicate row is not counted twice
    assert rows["A1"]["social_media_platform_twitter"] == 0.5
    assert rows["A1"]["engagement_score_mean"] == 70
    # Transaction 2's missing rating is the median of 4, 2, 3, 1.
    assert rows["A1"]["customer_rating_mean"] == pytest.approx((4 + 2.5 + 2) / 3)
    assert rows["A1"]["recency_days"] == 0
    assert rows["A1"]["active_days"] == 4
    assert rows["A1"]["engagement_spending_ratio"] == pytest.approx(70 / (350 / 3), rel=1e-5)
    assert rows["A1"]["preferred_category"] == "Books"
    assert rows["A2"]["preferred_category"] == "Sports"  # 1-1 tie, Sports bought last
    assert report.target_ties_broken == 1
    assert report.target_counts == {"Books": 1, "Sports": 1}
    assert any(
        action.action == "impute_median" and action.column == "customer_rating"
        for action in report.cleaning
    )

    saved = json.loads(workspace.merge_report.read_text(encoding="utf-8"))
    assert saved == report.to_dict()
    assert saved["files"]["mapping"] == "data/raw/customers/id_mapping.csv"
    assert not any(report.missing_columns.values()) and report.column_notes() == []


def test_missing_optional_and_ignored_columns_are_reported(workspace: Workspace) -> None:
    profiles = ASSIGNMENT_PROFILES.replace(",engagement_score,", ",mood,")
    write_customer_tables(workspace, {**ASSIGNMENT_FILES, "customer_social_profiles.csv": profiles})
    report = merge_customers(workspace, Settings())
    assert report.missing_columns == {
        "profiles": ["engagement_score"],
        "transactions": [],
        "mapping": [],
    }
    assert report.ignored_columns["profiles"] == ["mood"]
    assert not any(c.startswith("engagement") for c in report.feature_columns)
    notes = report.column_notes()
    assert notes[0].startswith(
        "data/raw/customers/customer_social_profiles.csv lacks the expected column(s) "
        "engagement_score: merged without them"
    )
    assert notes[1].startswith(
        "data/raw/customers/customer_social_profiles.csv: column(s) mood ignored"
    )


def test_profile_shape_one_row_per_customer(workspace: Workspace) -> None:
    write_customer_tables(workspace, PROFILE_FILES)
    report = merge_customers(workspace, Settings())

    assert report.shape == "profile"
    assert "mapping" not in report.rows_in
    assert report.row_outcomes["transactions"]["no_profile"] == 1  # C9
    assert report.row_outcomes["profiles"] == {"duplicate": 0, "matched": 2, "no_transactions": 1}
    assert report.unaccounted_rows() == {"profiles": 0, "transactions": 0}
    assert report.joined_rows == report.joined_rows_as_given == 3

    rows = merged_rows(workspace)
    assert set(rows) == {"C1", "C2"}
    first = rows["C1"]
    assert first["age"] == 30  # one profile row: plain columns, no _mean suffix
    assert (first["gender_f"], first["gender_m"]) == (1, 0)
    assert first["social_media_activity_high"] == 1
    assert first["recency_days"] == 5
    assert first["purchase_frequency_mean"] == 2.5
    assert first["spending_per_follower"] == pytest.approx(300 / 1000)
    assert first["spending_per_post"] == pytest.approx(300 / 5)
    assert first["engagement_spending_ratio"] == pytest.approx(0.05 / 150, rel=1e-5)
    assert first["preferred_category"] == "Sports"  # tie broken by the fewest days since
    assert rows["C2"]["spending_per_follower"] == 0  # no followers: no ratio
    assert rows["C2"]["preferred_category"] == "Books"


def test_numeric_activity_column_stays_numeric(workspace: Workspace) -> None:
    profiles = PROFILE_PROFILES.replace(",High,", ",7,").replace(",Low,", ",2,")
    write_customer_tables(
        workspace,
        {
            "customer_profiles.csv": profiles.replace(",Medium,", ",4,"),
            "transactions.csv": PROFILE_TRANSACTIONS,
        },
    )
    merge_customers(workspace, Settings())
    assert merged_rows(workspace)["C1"]["social_media_activity"] == 7


def test_outliers_are_clipped_and_reported(workspace: Workspace) -> None:
    amounts = ["100", "110", "120", "130", "100000"]
    transactions = "customer_id,purchase_amount,product_category\n" + "".join(
        f"C1,{amount},Books\n" for amount in amounts
    )
    write_customer_tables(
        workspace, {"customer_profiles.csv": PROFILE_PROFILES, "transactions.csv": transactions}
    )
    report = merge_customers(workspace, Settings())
    clipped = [a for a in report.cleaning if a.action == "clip_outliers"]
    assert [(a.column, a.count) for a in clipped] == [("purchase_amount", 1)]
    # Quartiles 110 and 130, 3 IQR above: 190.
    assert merged_rows(workspace)["C1"]["purchase_amount_max"] == 190

    unclipped = Settings(merge=MergeSettings(outlier_iqr=0))
    merge_customers(workspace, unclipped)
    assert merged_rows(workspace)["C1"]["purchase_amount_max"] == 100000


def test_bom_semicolons_and_decimal_commas_are_accepted(workspace: Workspace) -> None:
    semicolons = {
        name: text.replace(",", ";").replace("4.0", "4,0").replace("2.0", "2,0")
        for name, text in ASSIGNMENT_FILES.items()
    }
    folder = write_customer_tables(workspace, semicolons)
    bom = folder / "customer_transactions.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    report = merge_customers(workspace, Settings())
    assert report.joined_rows == ASSIGNMENT_JOINED_ROWS
    assert merged_rows(workspace)["A1"]["purchase_interest_score_mean"] == 3.0
    assert any(action.action == "decimal_comma" for action in report.cleaning)


def test_missing_markers_are_imputed_not_refused(workspace: Workspace) -> None:
    transactions = ASSIGNMENT_TRANSACTIONS.replace(
        "10,1,100,2024-01-01,Books,4.0", "10,1,NA,,Books,n/a"
    )
    write_customer_tables(
        workspace, {**ASSIGNMENT_FILES, "customer_transactions.csv": transactions}
    )
    report = merge_customers(workspace, Settings())
    imputed = {a.column: a.count for a in report.cleaning if a.action == "impute_median"}
    assert imputed == {"purchase_amount": 1, "customer_rating": 2}


def test_rows_without_a_category_are_dropped_and_counted(workspace: Workspace) -> None:
    transactions = ASSIGNMENT_TRANSACTIONS.replace(
        "40,5,10,2024-01-02,Sports,", "40,5,10,2024-01-02,,"
    )
    write_customer_tables(
        workspace, {**ASSIGNMENT_FILES, "customer_transactions.csv": transactions}
    )
    report = merge_customers(workspace, Settings())
    assert report.row_outcomes["transactions"]["missing_category"] == 1
    assert report.row_outcomes["transactions"]["id_not_in_mapping"] == 0
    assert report.unaccounted_rows()["transactions"] == 0


def test_columns_and_file_names_come_from_settings(workspace: Workspace) -> None:
    write_customer_tables(
        workspace,
        {
            "people.csv": ASSIGNMENT_PROFILES.replace("customer_id_new,", "member_key,", 1),
            "sales.csv": ASSIGNMENT_TRANSACTIONS.replace("purchase_amount", "total"),
            "links.csv": ASSIGNMENT_MAPPING,
        },
    )
    (workspace.root / "mmauth.toml").write_text(
        '[merge]\nshape = "assignment"\nprofiles_file = "people.csv"\n'
        'transactions_file = "sales.csv"\nmapping_file = "links.csv"\n'
        '[merge.columns]\nprofile_id = "member_key"\namount = "total"\n',
        encoding="utf-8",
    )
    report = merge_customers(workspace, load_settings(workspace.root, environ={}))
    assert report.columns["amount"] == "total"
    assert report.joined_rows == ASSIGNMENT_JOINED_ROWS
    assert merged_rows(workspace)["A1"]["total_sum"] == 350


def test_unknown_role_is_a_config_error(workspace: Workspace) -> None:
    write_customer_tables(workspace, ASSIGNMENT_FILES)
    with pytest.raises(ConfigError, match="unknown role 'price'"):
        merge_customers(workspace, Settings(merge=MergeSettings(columns={"price": "x"})))


BAD_INPUTS = [
    # (files changed: name -> text or None to delete, error pattern)
    (
        {"customer_transactions.csv": None},
        r"customers: missing file: no transactions table",
    ),
    (
        {"id_mapping.csv": None},
        r"missing file id_mapping.csv",
    ),
    (
        {"customer_transactions.csv": ""},
        r"customer_transactions.csv: the file is empty",
    ),
    (
        {"customer_transactions.csv": ASSIGNMENT_TRANSACTIONS.splitlines()[0] + "\n"},
        r"customer_transactions.csv, row 2: the file has a header but no data rows",
    ),
    (
        {"customer_transactions.csv": ASSIGNMENT_TRANSACTIONS.replace(",customer_rating", ",x")},
        None,  # optional column renamed: still merges (rating is optional)
    ),
    (
        {"customer_transactions.csv": ASSIGNMENT_TRANSACTIONS.replace("purchase_amount", "amt")},
        r"customer_transactions.csv, column 'purchase_amount', row 1: missing column",
    ),
    (
        {"customer_transactions.csv": ASSIGNMENT_TRANSACTIONS.replace(",50,", ",fifty,")},
        r"customer_transactions.csv, column 'purchase_amount', row 4: 'fifty' is not a number",
    ),
    (
        {
            "customer_transactions.csv": "customer_id_legacy,purchase_amount,product_category\n"
            "10,NA,Books\n20,,Sports\n"
        },
        r"column 'purchase_amount', row 2: the column has no values at all",
    ),
    (
        {"customer_transactions.csv": ASSIGNMENT_TRANSACTIONS.replace("2024-01-03", "soon")},
        r"column 'purchase_date', row 4: 'soon' is not a date",
    ),
    (
        {"customer_transactions.csv": ASSIGNMENT_TRANSACTIONS.replace("20,3,", "20,1,")},
        r"column 'transaction_id', row 4: transaction '1' already appears at row 2",
    ),
    (
        {"customer_transactions.csv": ASSIGNMENT_TRANSACTIONS + "10,9,5\n"},
        r"customer_transactions.csv, row 7: 3 fields where the header has 6",
    ),
    (
        {"id_mapping.csv": ASSIGNMENT_MAPPING.replace("10,A2", ",A2")},
        r"id_mapping.csv, column 'customer_id_legacy', row 2: the id is missing",
    ),
    (
        {"id_mapping.csv": "customer_id_legacy,customer_id_new\n10,B1\n20,B2\n"},
        r"id_mapping.csv, column 'customer_id_new', row 2: the id mapping maps to nowhere",
    ),
    (
        {"id_mapping.csv": "customer_id_legacy,customer_id_new\nA1,10\nA2,20\n"},
        r"id_mapping.csv, column 'customer_id_legacy', row 2: the id mapping maps to nowhere",
    ),
    (
        {"customer_social_profiles.csv": "who,other\nX1,1\n"},
        r"customer_social_profiles.csv, column 'customer_id_new', row 1: missing column",
    ),
]


@pytest.mark.parametrize(("changes", "match"), BAD_INPUTS)
def test_bad_input_names_file_column_row_and_writes_nothing(
    workspace: Workspace, changes: dict[str, str | None], match: str | None
) -> None:
    write_customer_tables(workspace, {**ASSIGNMENT_FILES, **changes})
    if match is None:
        assert merge_customers(workspace, Settings()).customers_out == 2
        return
    with pytest.raises(InputError, match=match):
        merge_customers(workspace, Settings())
    assert not workspace.merged_dataset.exists()
    assert not workspace.merge_report.exists()
    assert list(workspace.data_dir.glob("*.tmp")) + list(workspace.data_dir.glob(".*")) == []


def test_non_utf8_file_is_refused(workspace: Workspace) -> None:
    folder = write_customer_tables(workspace, PROFILE_FILES)
    (folder / "transactions.csv").write_bytes(
        PROFILE_TRANSACTIONS.encode() + "Zürich\n".encode("latin-1")
    )
    with pytest.raises(InputError, match=r"transactions.csv: not UTF-8"):
        merge_customers(workspace, Settings())


def test_tables_matching_no_shape_name_the_missing_column(workspace: Workspace) -> None:
    write_customer_tables(
        workspace,
        {"customer_profiles.csv": "who,age\nC1,3\n", "transactions.csv": PROFILE_TRANSACTIONS},
    )
    with pytest.raises(InputError, match=r"column 'customer_id', row 1: missing column"):
        merge_customers(workspace, Settings())


def test_two_candidate_files_for_one_table_is_ambiguous(workspace: Workspace) -> None:
    write_customer_tables(workspace, {**ASSIGNMENT_FILES, **PROFILE_FILES})
    with pytest.raises(InputError, match="set merge.profiles_file"):
        merge_customers(workspace, Settings())


def test_a_failed_merge_keeps_the_previous_outputs(workspace: Workspace) -> None:
    folder = write_customer_tables(workspace, ASSIGNMENT_FILES)
    merge_customers(workspace, Settings())
    before = workspace.merged_dataset.read_bytes(), workspace.merge_report.read_bytes()
    (folder / "customer_transactions.csv").write_text("broken\n", encoding="utf-8")
    with pytest.raises(InputError):
        merge_customers(workspace, Settings())
    assert (workspace.merged_dataset.read_bytes(), workspace.merge_report.read_bytes()) == before


# Property tests: random assignment-shaped tables, checked against a naive set computation.
profile_ids = st.sampled_from(["A1", "A01", "A007", "B2", "7"])
legacy_ids = st.sampled_from(["1", "01", "007", "2", "A1"])
categories = st.sampled_from(["Books", "Sports", "Clothing"])


@st.composite
def assignment_tables(draw: st.DrawFn) -> tuple[list, list, list]:
    profiles = draw(
        st.lists(
            st.tuples(profile_ids, st.sampled_from(["X", "Y"]), st.integers(0, 100)),
            min_size=1,
            max_size=12,
        )
    )
    transactions = draw(
        st.lists(
            st.tuples(legacy_ids, st.integers(1, 500), categories, st.integers(1, 28)),
            min_size=1,
            max_size=15,
        )
    )
    mapping = draw(st.lists(st.tuples(legacy_ids, profile_ids), min_size=1, max_size=10))
    return profiles, transactions, mapping


def _write_random_tables(workspace: Workspace, tables: tuple[list, list, list]) -> None:
    profiles, transactions, mapping = tables
    write_customer_tables(
        workspace,
        {
            "customer_social_profiles.csv": "customer_id_new,social_media_platform,engagement_score\n"
            + "".join(f"{i},{p},{e}\n" for i, p, e in profiles),
            "customer_transactions.csv": "customer_id_legacy,purchase_amount,product_category,"
            "purchase_date\n"
            + "".join(f"{i},{a},{c},2024-02-{d:02d}\n" for i, a, c, d in transactions),
            "id_mapping.csv": "customer_id_legacy,customer_id_new\n"
            + "".join(f"{legacy},{new}\n" for legacy, new in mapping),
        },
    )


@settings(max_examples=40, deadline=None)
@given(assignment_tables())
def test_no_row_is_lost_and_ids_round_trip(tables: tuple[list, list, list]) -> None:
    profiles, transactions, mapping = tables
    known_profiles = {row[0] for row in profiles}
    transaction_ids = {row[0] for row in transactions}
    links = set(mapping)
    expected_customers = {
        new for legacy, new in links if legacy in transaction_ids and new in known_profiles
    }
    with tempfile.TemporaryDirectory() as folder:
        workspace = Workspace(Path(folder))
        _write_random_tables(workspace, tables)
        event("refused: no transaction reaches a profile" if not expected_customers else "merged")
        if not expected_customers:
            with pytest.raises(InputError):
                merge_customers(workspace, Settings())
            return
        report = merge_customers(workspace, Settings())
        written = pd.read_csv(workspace.merged_dataset, dtype=str, keep_default_na=False)

    assert all(count == 0 for count in report.unaccounted_rows().values())
    assert report.rows_in == {
        "profiles": len(profiles),
        "transactions": len(transactions),
        "mapping": len(mapping),
    }
    assert report.duplicates_dropped["mapping"] == len(mapping) - len(links)
    # Ids come out exactly as written: "A007" and "007" stay text, never become numbers.
    assert sorted(written["customer_id"]) == sorted(expected_customers)
    assert report.customers_out == len(written) == len(expected_customers)
    distinct_profile_rows = {row for row in profiles}
    expected_joined = sum(
        sum(1 for t in set(transactions) if t[0] == legacy)
        * sum(1 for p in distinct_profile_rows if p[0] == new)
        for legacy, new in links
    )
    assert report.joined_rows == expected_joined
    assert set(written["preferred_category"]) <= {"Books", "Sports", "Clothing"}

"""members.csv has one reader: stripped values, empty rows skipped, conflicting links refused."""

from __future__ import annotations

import pytest

from engine.core.errors import InputError
from engine.core.workspace import Workspace
from engine.customers import read_members, write_members


def write_members_text(workspace: Workspace, text: str) -> None:
    workspace.members_file.parent.mkdir(parents=True, exist_ok=True)
    workspace.members_file.write_text(text, encoding="utf-8")


def test_a_missing_file_links_nobody(workspace: Workspace) -> None:
    assert read_members(workspace) == {}


@pytest.mark.parametrize("text", ["", "\n\n", "member,customer_id\n"])
def test_an_empty_file_links_nobody(workspace: Workspace, text: str) -> None:
    write_members_text(workspace, text)
    assert read_members(workspace) == {}


def test_values_and_header_are_stripped(workspace: Workspace) -> None:
    write_members_text(workspace, "\ufeff member , customer_id \n  ana ,  A1 \nbo,A2\n")
    assert read_members(workspace) == {"ana": "A1", "bo": "A2"}


def test_rows_without_a_member_or_a_customer_are_skipped(workspace: Workspace) -> None:
    write_members_text(workspace, "member,customer_id\nana,A1\n\nbo,\n ,A3\n,\ncy\n")
    assert read_members(workspace) == {"ana": "A1"}


def test_the_same_link_twice_is_one_link(workspace: Workspace) -> None:
    write_members_text(workspace, "member,customer_id\nana,A1\nbo,A2\nana, A1\n")
    assert read_members(workspace) == {"ana": "A1", "bo": "A2"}


def test_a_member_linked_to_two_customers_names_the_file_and_both_rows(
    workspace: Workspace,
) -> None:
    write_members_text(workspace, "member,customer_id\nana,A1\nbo,A2\nana,A9\n")
    with pytest.raises(
        InputError, match=r"members\.csv.*row 4.*'A1' at row 2 and to 'A9' at row 4"
    ):
        read_members(workspace)


@pytest.mark.parametrize(
    "header, missing", [("name,customer_id", "member"), ("member,customer", "customer_id")]
)
def test_wrong_columns_name_the_file_and_the_column(
    workspace: Workspace, header: str, missing: str
) -> None:
    write_members_text(workspace, f"{header}\nana,A1\n")
    with pytest.raises(
        InputError, match=rf"members\.csv, column '{missing}', row 1: missing column"
    ):
        read_members(workspace)


def test_other_columns_are_ignored(workspace: Workspace) -> None:
    write_members_text(workspace, "note,customer_id,member\nhi,A1,ana\n")
    assert read_members(workspace) == {"ana": "A1"}


def test_a_row_longer_than_the_header_is_refused(workspace: Workspace) -> None:
    write_members_text(workspace, "member,customer_id\nana,A1\nbo,A2,extra\n")
    with pytest.raises(InputError, match=r"members\.csv, row 3: 3 fields where the header has 2"):
        read_members(workspace)


def test_what_is_written_reads_back(workspace: Workspace) -> None:
    write_members(workspace, {"bo": "A2", "ana": "A1"})
    assert workspace.members_file.read_text(encoding="utf-8") == (
        "member,customer_id\nana,A1\nbo,A2\n"
    )
    assert read_members(workspace) == {"ana": "A1", "bo": "A2"}


def test_link_problems_name_what_would_leave_a_member_without_a_recommendation(
    workspace: Workspace,
) -> None:
    from engine.customers.members import link_problems

    for member in ("ana", "ben", "cara"):
        (workspace.faces_dir / member).mkdir(parents=True)
        (workspace.faces_dir / member / "a.png").write_bytes(b"x")
    write_members_text(workspace, "member,customer_id\nana,A1\nanna,A2\nben,A999\n")
    problems = link_problems(workspace, ["A1", "A2", "A3"])
    assert len(problems) == 3
    assert "links 'anna' to A2, but nobody is enrolled as 'anna'" in problems[0]
    assert (
        "links ben to customer 'A999', which data/merged_dataset.csv does not hold" in problems[1]
    )
    assert "cara has no customer link" in problems[2]
    write_members_text(workspace, "name,customer\nana,A1\n")
    (problem,) = link_problems(workspace, ["A1"])
    assert "cannot be read" in problem and "no member gets a recommendation" in problem
    write_members_text(workspace, "member,customer_id\nana,A1\nben,A2\ncara,A3\n")
    assert link_problems(workspace, ["A1", "A2", "A3"]) == []

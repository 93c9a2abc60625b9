"""members.csv, the links from enrolled members to customers: its one reader and its one writer.

Every part of the engine that needs a member's customer reads the file through ``read_members``,
so enrolment, the recommender and the workspace stats agree on what the file says.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Mapping

from engine.core.errors import InputError
from engine.core.fileio import atomic_write_text
from engine.core.workspace import Workspace, member_folders

MEMBERS_HEADER = ("member", "customer_id")


def read_members(workspace: Workspace) -> dict[str, str]:
    """member -> customer_id from members.csv, by one rule every reader follows.

    Cells are stripped of whitespace. A row without a member or without a customer links
    nobody and is skipped. A member listed twice with the same customer is one link; with two
    different customers it is an InputError naming both rows. A missing or empty file is no
    links; a header without ``member`` or ``customer_id`` is an InputError naming the column.
    Other columns are ignored.
    """
    path = workspace.members_file
    if not path.is_file():
        return {}
    shown = workspace.relative(path)
    rows = _numbered_rows(path.read_bytes(), shown)
    if not rows:
        return {}
    (header_row, header), records = rows[0], rows[1:]
    positions = _column_positions(header, header_row, shown)
    links: dict[str, str] = {}
    link_rows: dict[str, int] = {}
    for row, cells in records:
        if len(cells) > len(header):
            raise InputError(
                f"{len(cells)} fields where the header has {len(header)}", path=shown, row=row
            )
        member, customer = (cells[i] if i < len(cells) else "" for i in positions)
        if not member or not customer:
            continue
        if member in links and links[member] != customer:
            raise InputError(
                f"member {member!r} is linked to customer {links[member]!r} at row "
                f"{link_rows[member]} and to {customer!r} at row {row}; keep one of the two rows",
                path=shown,
                column=MEMBERS_HEADER[1],
                row=row,
            )
        links.setdefault(member, customer)
        link_rows.setdefault(member, row)
    return links


def write_members(workspace: Workspace, links: Mapping[str, str]) -> None:
    """Replace members.csv with these links, sorted by member, in one atomic write."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MEMBERS_HEADER)
    writer.writerows(sorted(links.items()))
    atomic_write_text(workspace.members_file, buffer.getvalue())


def _numbered_rows(data: bytes, shown: str) -> list[tuple[int, list[str]]]:
    """Non-blank rows as stripped cells, each with its spreadsheet row number (header = row 1)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(
            f"not UTF-8 text (byte {error.start} is {data[error.start]:#04x}); save it as UTF-8",
            path=shown,
        ) from error
    reader = csv.reader(io.StringIO(text))
    rows: list[tuple[int, list[str]]] = []
    try:
        for record in reader:
            if "".join(record).strip():
                rows.append((reader.line_num, [cell.strip() for cell in record]))
    except csv.Error as error:
        raise InputError(f"not valid CSV: {error}", path=shown, row=reader.line_num) from error
    return rows


def _column_positions(header: list[str], header_row: int, shown: str) -> tuple[int, int]:
    """Where the member and customer_id columns are in the header."""
    for column in MEMBERS_HEADER:
        if column not in header:
            raise InputError(
                f"missing column: the header must name {','.join(MEMBERS_HEADER)} "
                f"(found {','.join(header)})",
                path=shown,
                column=column,
                row=header_row,
            )
    member, customer = (header.index(column) for column in MEMBERS_HEADER)
    return member, customer


def link_problems(workspace: Workspace, customer_ids: Collection[str]) -> list[str]:
    """What in members.csv would leave a member without a recommendation at login, in words
    (``customer_ids``: the merged table's), for mmauth train to say before anyone logs in: an
    unreadable file, a link for a name nobody is enrolled under (a typo?), a link to a customer
    the merged table does not hold, enrolled members with no link."""
    where = workspace.relative(workspace.members_file)
    try:
        links = read_members(workspace)
    except InputError as error:
        return [f"{where} cannot be read ({error.message}): no member gets a recommendation"]
    enrolled = set(member_folders(workspace.faces_dir)) | set(member_folders(workspace.voices_dir))
    known = set(customer_ids)
    problems = [
        f"{where} links {member!r} to {customer}, but nobody is enrolled as {member!r} (a typo "
        "of a member's name?)"
        for member, customer in sorted(links.items())
        if member not in enrolled
    ]
    problems += [
        f"{where} links {member} to customer {customer!r}, which data/merged_dataset.csv does "
        f"not hold: {member} gets no recommendation"
        for member, customer in sorted(links.items())
        if member in enrolled and customer not in known
    ]
    unlinked = sorted(enrolled - set(links))
    if unlinked and links:
        problems.append(
            f"{', '.join(unlinked)} {'has' if len(unlinked) == 1 else 'have'} no customer link in "
            f"{where}: no recommendation at login"
        )
    return problems

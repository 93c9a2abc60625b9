"""The join of cleaned tables: transactions reach profile ids through the many-to-many id mapping
(or directly, when both tables share one id space), with the bookkeeping of who matched whom."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping

import pandas as pd

from engine.core.errors import InputError
from engine.customers.read import Table, TableName

# Internal column names of the join, unlike any input column name.
LINK = "__transaction_customer__"
CUSTOMER = "__profile_customer__"


@dataclasses.dataclass(frozen=True)
class Join:
    """Transactions attributed to profile ids through the links, and the bookkeeping of it."""

    profile_ids: pd.Series
    """Profile id of each cleaned profile row."""
    transaction_ids: pd.Series
    """Customer id of each cleaned transaction row, in the transactions' id space."""
    links: pd.DataFrame
    """Transaction-side id (LINK) -> profile id (CUSTOMER): the mapping, or each id to itself."""
    pairs: pd.DataFrame
    """One row per (customer, transaction): the cleaned transaction columns plus LINK and
    CUSTOMER, indexed by the transaction's row number."""
    has_mapping: bool
    """Whether the links came from an id mapping file."""

    @functools.cached_property
    def known_profiles(self) -> set[str]:
        return set(self.profile_ids)

    @functools.cached_property
    def customers(self) -> set[str]:
        return set(self.pairs[CUSTOMER])

    @property
    def joined_rows(self) -> int:
        return int(self.pairs[CUSTOMER].map(self.profile_ids.value_counts()).sum())

    def outcomes(self) -> dict[TableName, dict[str, int]]:
        """Where each cleaned row went, per table."""
        profile_matched = self.profile_ids.isin(self.customers)
        mapped = self.transaction_ids.isin(set(self.links[LINK]))
        matched = self.transaction_ids.index.isin(self.pairs.index)
        outcomes: dict[TableName, dict[str, int]] = {
            "profiles": {
                "matched": int(profile_matched.sum()),
                "no_transactions": int((~profile_matched).sum()),
            },
            "transactions": {
                "matched": int(matched.sum()),
                "id_not_in_mapping": int((~mapped).sum()),
                "no_profile": int((mapped & ~matched).sum()),
            },
        }
        if self.has_mapping:
            has_transactions = self.links[LINK].isin(set(self.transaction_ids))
            has_profile = self.links[CUSTOMER].isin(self.known_profiles)
            outcomes["mapping"] = {
                "used": int((has_transactions & has_profile).sum()),
                "id_without_transactions": int((~has_transactions).sum()),
                "id_without_profile": int((has_transactions & ~has_profile).sum()),
            }
        return outcomes

    def ids_in(self) -> dict[str, int]:
        ids = {
            "profiles": len(self.known_profiles),
            "transactions": int(self.transaction_ids.nunique()),
        }
        if self.has_mapping:
            ids["mapping_transaction_ids"] = int(self.links[LINK].nunique())
            ids["mapping_profile_ids"] = int(self.links[CUSTOMER].nunique())
        return ids

    def unmatched(self) -> dict[str, set[str]]:
        return {
            "profiles": self.known_profiles - self.customers,
            "transactions": set(self.transaction_ids) - set(self.pairs[LINK]),
        }

    def many_to_many(self) -> dict[str, int]:
        """Ids with several partners, and the rows the expansion added to the join."""
        used = self.links.loc[
            self.links[CUSTOMER].isin(self.known_profiles)
            & self.links[LINK].isin(set(self.transaction_ids))
        ]
        return {
            "transaction_ids_to_several_customers": int(
                (used.groupby(LINK)[CUSTOMER].nunique() > 1).sum()
            ),
            "customers_from_several_transaction_ids": int(
                (used.groupby(CUSTOMER)[LINK].nunique() > 1).sum()
            ),
            "transactions_to_several_customers": int((self.pairs.index.value_counts() > 1).sum()),
            "extra_rows_from_mapping": len(self.pairs) - self.pairs.index.nunique(),
            "extra_rows_from_profile_rows": self.joined_rows - len(self.pairs),
        }


def _links(
    tables: Mapping[TableName, Table],
    mapping: pd.DataFrame | None,
    transaction_ids: pd.Series,
    profile_ids: pd.Series,
    columns: Mapping[str, str],
) -> pd.DataFrame:
    """Transaction-side id -> profile id: the mapping's rows, or each id to itself."""
    if mapping is None:
        identity = sorted(set(transaction_ids))
        return pd.DataFrame({LINK: identity, CUSTOMER: identity})
    links = pd.DataFrame(
        {
            LINK: mapping[columns["mapping_transaction_id"]],
            CUSTOMER: mapping[columns["mapping_profile_id"]],
        }
    )
    _check_mapping_reaches(tables, links, set(transaction_ids), set(profile_ids), columns)
    return links


def join_tables(
    tables: Mapping[TableName, Table],
    profiles: pd.DataFrame,
    transactions: pd.DataFrame,
    mapping: pd.DataFrame | None,
    columns: Mapping[str, str],
) -> Join:
    """Attribute transactions to profile ids; no match at all is an InputError."""
    profile_ids = profiles[columns["profile_id"]]
    transaction_ids = transactions[columns["transaction_customer_id"]]
    links = _links(tables, mapping, transaction_ids, profile_ids, columns)
    reaching = links.loc[links[CUSTOMER].isin(set(profile_ids))]
    attributed = transactions.assign(**{LINK: transaction_ids}).reset_index()
    pairs = attributed.merge(reaching, on=LINK, how="inner").set_index(transactions.index.name)
    join = Join(profile_ids, transaction_ids, links, pairs, has_mapping=mapping is not None)
    if pairs.empty:
        raise InputError(
            f"no transaction reaches a profile: none of these ids matches "
            f"{tables['profiles'].path.name} column {columns['profile_id']!r}"
            + (" through the id mapping" if mapping is not None else ""),
            path=str(tables["transactions"].path),
            column=columns["transaction_customer_id"],
            row=int(transactions.index[0]),
        )
    return join


def _check_mapping_reaches(
    tables: Mapping[TableName, Table],
    links: pd.DataFrame,
    transaction_ids: set[str],
    profile_ids: set[str],
    columns: Mapping[str, str],
) -> None:
    """A mapping none of whose ids exist on one side maps to nowhere: that is a wrong file."""
    mapping = tables["mapping"]
    sides: tuple[tuple[str, set[str], TableName], ...] = (
        (LINK, transaction_ids, "transactions"),
        (CUSTOMER, profile_ids, "profiles"),
    )
    for side, known, other in sides:
        if not links[side].isin(known).any():
            role = "mapping_transaction_id" if side == LINK else "mapping_profile_id"
            target_role = "transaction_customer_id" if side == LINK else "profile_id"
            first_row = int(links.index[0])
            raise InputError(
                f"the id mapping maps to nowhere: {links[side].iloc[0]!r} and every other id "
                f"in this column is absent from {tables[other].path.name} column "
                f"{columns[target_role]!r}",
                path=str(mapping.path),
                column=columns[role],
                row=first_row,
            )


def join_size_as_given(tables: Mapping[TableName, Table], columns: Mapping[str, str]) -> int:
    """Rows of transactions x mapping x profiles on the tables as read (no cleaning at all)."""
    profile_rows = tables["profiles"].frame[columns["profile_id"]].value_counts()
    transaction_rows = (
        tables["transactions"].frame[columns["transaction_customer_id"]].value_counts()
    )
    if "mapping" in tables:
        mapping = tables["mapping"].frame
        links = mapping[[columns["mapping_transaction_id"], columns["mapping_profile_id"]]]
        links.columns = [LINK, CUSTOMER]
    else:
        links = pd.DataFrame({LINK: transaction_rows.index, CUSTOMER: transaction_rows.index})
    per_link = links[LINK].map(transaction_rows).fillna(0)
    per_customer = links[CUSTOMER].map(profile_rows).fillna(0)
    return int((per_link * per_customer).sum())

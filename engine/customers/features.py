"""Per-customer feature engineering: one row per customer from the joined tables, with the target
(the customer's preferred product category)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from engine.customers.join import CUSTOMER
from engine.customers.read import ROLES

CUSTOMER_ID = "customer_id"
TARGET = "preferred_category"
MAX_CATEGORY_LEVELS = 20
"""Categorical columns keep their most frequent levels as one-hot shares; the rest go to _other."""


def customer_rows(
    profiles: pd.DataFrame,
    transactions: pd.DataFrame,
    pairs: pd.DataFrame,
    columns: Mapping[str, str],
) -> tuple[pd.DataFrame, int]:
    """One row per customer: profile features, transaction aggregates, engineered ratios, target."""
    customers = sorted(set(pairs[CUSTOMER]))
    profile_part, representative = _profile_features(
        profiles.loc[profiles[columns["profile_id"]].isin(customers)],
        profiles,
        columns,
    )
    transaction_part = _transaction_features(pairs, transactions, columns)
    merged = profile_part.join(transaction_part, how="inner")
    merged = merged.join(_engineered_features(merged, representative, columns))
    target, ties = _preferred_category(pairs, columns)
    merged[TARGET] = target
    merged.index.name = CUSTOMER_ID
    return merged.reset_index(), ties


def _profile_features(
    matched: pd.DataFrame, all_profiles: pd.DataFrame, columns: Mapping[str, str]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Numeric profile columns (mean/min/max when a customer has several rows) and categorical
    shares; also which output column stands for each numeric role."""
    id_column = columns["profile_id"]
    grouped = matched.groupby(id_column, sort=True)
    several_rows = bool((grouped.size() > 1).any())
    parts: list[pd.DataFrame | pd.Series] = [grouped.size().rename("profile_rows")]
    representative: dict[str, str] = {}
    for role in ROLES:
        if role.table != "profiles" or role.name not in columns or role.kind == "id":
            continue
        column = columns[role.name]
        values = matched[column]
        if pd.api.types.is_numeric_dtype(values):
            if several_rows:
                stats = grouped[column].agg(["mean", "min", "max"])
                stats.columns = [f"{column}_{stat}" for stat in stats.columns]
                parts.append(stats)
                representative[role.name] = f"{column}_mean"
            else:
                parts.append(grouped[column].first())
                representative[role.name] = column
        else:
            parts.append(_category_shares(matched, all_profiles[column], id_column, column))
    return pd.concat(parts, axis=1), representative


def _category_shares(
    matched: pd.DataFrame, every_value: pd.Series, id_column: str, column: str
) -> pd.DataFrame:
    """Share of each customer's rows at each level: one-hot when a customer has one row."""
    levels = every_value.value_counts().index[:MAX_CATEGORY_LEVELS]
    names = {level: f"{column}_{_slug(level)}" for level in levels}
    kept = matched[column].isin(levels)
    # Levels that differ only in case or punctuation share one column.
    encoded = matched[column].where(kept).map(names).fillna(f"{column}_other")
    shares = pd.get_dummies(encoded, dtype=float).groupby(matched[id_column].to_numpy()).mean()
    every_level = sorted(set(names.values()))
    if not kept.all():
        every_level.append(f"{column}_other")
    return shares.reindex(columns=every_level, fill_value=0.0)


def _slug(value: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(value).lower()).strip("_") or "blank"


_TRANSACTION_STATS = {
    "amount": ("sum", "mean", "min", "max"),
    "rating": ("mean", "min", "max"),
    "frequency": ("mean",),
}


def _transaction_features(
    pairs: pd.DataFrame, transactions: pd.DataFrame, columns: Mapping[str, str]
) -> pd.DataFrame:
    """Count, amount and rating aggregates and recency per customer."""
    grouped = pairs.groupby(CUSTOMER, sort=True)
    parts: list[pd.DataFrame | pd.Series] = [grouped.size().rename("transaction_count")]
    for role, stats in _TRANSACTION_STATS.items():
        if role in columns:
            aggregated = grouped[columns[role]].agg(list(stats))
            aggregated.columns = [f"{columns[role]}_{stat}" for stat in stats]
            parts.append(aggregated)
    if "date" in columns:
        dates = grouped[columns["date"]]
        latest_in_data = transactions[columns["date"]].max()
        parts.append((latest_in_data - dates.max()).dt.days.rename("recency_days"))
        parts.append((dates.max() - dates.min()).dt.days.rename("active_days"))
    elif "recency_days" in columns:
        parts.append(grouped[columns["recency_days"]].min().rename("recency_days"))
    features = pd.concat(parts, axis=1)
    # A customer whose every date is missing has no recency; the median stands in.
    return features.fillna(features.median(numeric_only=True))


def _engineered_features(
    merged: pd.DataFrame, representative: Mapping[str, str], columns: Mapping[str, str]
) -> pd.DataFrame:
    """Ratios between social and spending behaviour, where both columns exist."""
    amount = columns["amount"]
    ratios = {
        "spending_per_follower": (f"{amount}_sum", representative.get("followers")),
        "spending_per_post": (f"{amount}_sum", representative.get("posts_per_week")),
        "engagement_spending_ratio": (representative.get("engagement"), f"{amount}_mean"),
        "interest_spending_ratio": (representative.get("purchase_interest"), f"{amount}_mean"),
    }
    engineered = pd.DataFrame(index=merged.index)
    for name, (numerator, denominator) in ratios.items():
        if numerator is None or denominator is None:
            continue
        top, bottom = merged[numerator], merged[denominator]
        # Zero followers or zero spending has no meaningful ratio; 0 keeps the column numeric.
        engineered[name] = np.where(bottom > 0, top / bottom.where(bottom > 0), 0.0)
    return engineered


def _preferred_category(pairs: pd.DataFrame, columns: Mapping[str, str]) -> tuple[pd.Series, int]:
    """Most frequent category per customer; ties go to the category bought most recently."""
    category = columns["category"]
    if "date" in columns:
        dates = pairs[columns["date"]]
        nanoseconds = dates.to_numpy(dtype="datetime64[ns]").astype("int64").astype(float)
        recent = pd.Series(nanoseconds, index=pairs.index).where(dates.notna(), -np.inf)
    elif "recency_days" in columns:
        recent = -pairs[columns["recency_days"]]
    else:
        recent = pd.Series(0.0, index=pairs.index)
    keyed = pd.DataFrame(
        {
            CUSTOMER_ID: pairs[CUSTOMER].to_numpy(),
            "category": pairs[category].to_numpy(),
            "recent": recent.astype(float).to_numpy(),
            # Same day, same category count: the later row in the file was the later purchase.
            "row": pairs.index.to_numpy(),
        }
    )
    stats = (
        keyed.groupby([CUSTOMER_ID, "category"])
        .agg(count=("row", "size"), recent=("recent", "max"), row=("row", "max"))
        .reset_index()
    )
    top_count = stats.groupby(CUSTOMER_ID)["count"].transform("max")
    tied = stats.loc[stats["count"] == top_count].groupby(CUSTOMER_ID).size()
    ranked = stats.sort_values(
        [CUSTOMER_ID, "count", "recent", "row"], ascending=[True, False, False, False]
    ).drop_duplicates(CUSTOMER_ID)
    return ranked.set_index(CUSTOMER_ID)["category"], int((tied > 1).sum())

"""Customer tables for the sample workspace, in the original assignment's shape.

Social profiles keyed by ``customer_id_new`` (``A101``), transactions keyed by an integer
``customer_id_legacy``, and an id mapping between them that is a shuffle, not "strip the A".
Each customer has a latent preferred category that shapes their platforms, engagement, purchase
interest, amounts and ratings; a share of customers behave like another category, so a
recommender trained on the merged table is good but not perfect. Like the real tables, the
sample has exact duplicate rows, missing ratings and a few ids without a partner.
"""

from __future__ import annotations

import dataclasses
import datetime

import numpy as np
import pandas as pd

CATEGORIES = ("Sports", "Electronics", "Clothing", "Groceries", "Books")
PLATFORMS = ("Facebook", "Instagram", "LinkedIn", "TikTok", "Twitter")
SENTIMENTS = ("Negative", "Neutral", "Positive")
FIRST_TRANSACTION_ID = 1001
FIRST_DATE = datetime.date(2024, 1, 1)

# What a customer who prefers each category tends to do (rows follow CATEGORIES).
_PLATFORM_WEIGHTS = np.array(
    [
        [3, 4, 1, 3, 2],  # Sports
        [1, 1, 3, 2, 4],  # Electronics
        [2, 5, 1, 4, 1],  # Clothing
        [5, 2, 1, 1, 1],  # Groceries
        [2, 1, 4, 1, 3],  # Books
    ],
    dtype=float,
)
_ENGAGEMENT_MEAN = np.array([76, 64, 82, 52, 60], dtype=float)
_INTEREST_MEAN = np.array([3.3, 4.0, 3.6, 2.2, 2.7])
_AMOUNT_MEAN = np.array([250, 340, 200, 90, 120], dtype=float)
_AMOUNT_SD = np.array([90, 110, 80, 40, 50], dtype=float)
_RATING_SHIFT = np.array([0.2, -0.3, 0.0, 0.3, 0.5])


@dataclasses.dataclass(frozen=True)
class CustomerTables:
    """The three assignment tables plus the members' links to customers."""

    profiles: pd.DataFrame
    """customer_id_new, social_media_platform, engagement_score, purchase_interest_score,
    review_sentiment: one row per customer and platform, a few exact duplicates."""
    transactions: pd.DataFrame
    """customer_id_legacy, transaction_id, purchase_amount, purchase_date, product_category,
    customer_rating (a few missing)."""
    mapping: pd.DataFrame
    """customer_id_legacy -> customer_id_new, a few exact duplicates."""
    members: pd.DataFrame
    """member, customer_id: each sample member linked to a customer with transactions."""
    preferred: dict[str, str]
    """The category each customer was drawn to prefer (the truth the recommender estimates)."""


def make_customer_tables(
    rng: np.random.Generator,
    member_names: list[str],
    customers: int = 220,
    behaviour_noise: float = 0.15,
) -> CustomerTables:
    """Seeded customer tables with a learnable, noisy link from behaviour to category.

    ``behaviour_noise`` is the share of customers whose profile and spending look like another
    category than the one they mostly buy.
    """
    if customers < len(member_names) + 10:
        raise ValueError("need at least 10 more customers than members")
    new_ids = [f"A{101 + index}" for index in range(customers)]
    legacy_ids = _deranged_legacy_ids(rng, customers)
    preferred = rng.choice(len(CATEGORIES), size=customers, p=[0.22, 0.22, 0.2, 0.18, 0.18])
    looks_like = np.where(
        rng.random(customers) < behaviour_noise,
        rng.integers(len(CATEGORIES), size=customers),
        preferred,
    )
    satisfaction = rng.normal(0, 0.6, customers)

    # A few customers only exist on one side, as in real exports.
    without_transactions = set(rng.choice(customers, size=max(2, customers // 40), replace=False))
    linked = [i for i in range(customers) if i not in without_transactions]
    unmapped = set(rng.choice(linked, size=max(2, customers // 60), replace=False))

    profiles = _profiles(rng, new_ids, looks_like, satisfaction)
    transactions = _transactions(
        rng,
        [i for i in range(customers) if i not in without_transactions],
        legacy_ids,
        preferred,
        looks_like,
        satisfaction,
    )
    mapping_rows = [(legacy_ids[i], new_ids[i]) for i in range(customers) if i not in unmapped]
    mapping = pd.DataFrame(mapping_rows, columns=["customer_id_legacy", "customer_id_new"])
    mapping = _with_exact_duplicates(rng, mapping, count=max(3, customers // 40))

    eligible = [i for i in linked if i not in unmapped]
    chosen = rng.choice(eligible, size=len(member_names), replace=False)
    members = pd.DataFrame({"member": member_names, "customer_id": [new_ids[i] for i in chosen]})
    return CustomerTables(
        profiles=profiles,
        transactions=transactions,
        mapping=mapping,
        members=members,
        preferred={new_ids[i]: CATEGORIES[preferred[i]] for i in range(customers)},
    )


def _deranged_legacy_ids(rng: np.random.Generator, customers: int) -> np.ndarray:
    """Legacy numbers 101.. shuffled so that no customer keeps its own number (no strip-the-A)."""
    numbers = np.arange(101, 101 + customers)
    order = rng.permutation(customers)
    # Swapping a fixed point with its neighbour fixes it and creates no new one.
    for index in np.flatnonzero(order == np.arange(customers)):
        following = (index + 1) % customers
        order[index], order[following] = order[following], order[index]
    return numbers[order]


def _profiles(
    rng: np.random.Generator, new_ids: list[str], looks_like: np.ndarray, satisfaction: np.ndarray
) -> pd.DataFrame:
    rows = []
    for index, customer in enumerate(new_ids):
        weights = _PLATFORM_WEIGHTS[looks_like[index]]
        platform_count = int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
        platforms = rng.choice(
            len(PLATFORMS), size=platform_count, replace=False, p=weights / weights.sum()
        )
        for platform in platforms:
            engagement = rng.normal(_ENGAGEMENT_MEAN[looks_like[index]], 12)
            interest = rng.normal(_INTEREST_MEAN[looks_like[index]], 0.7)
            mood = satisfaction[index] + rng.normal(0, 0.7)
            sentiment = 0 if mood < -0.45 else (2 if mood > 0.35 else 1)
            rows.append(
                (
                    customer,
                    PLATFORMS[platform],
                    int(np.clip(round(engagement), 20, 100)),
                    round(float(np.clip(interest, 1.0, 5.0)), 1),
                    SENTIMENTS[sentiment],
                )
            )
    profiles = pd.DataFrame(
        rows,
        columns=[
            "customer_id_new",
            "social_media_platform",
            "engagement_score",
            "purchase_interest_score",
            "review_sentiment",
        ],
    )
    return _with_exact_duplicates(rng, profiles, count=max(3, len(new_ids) // 40))


def _transactions(
    rng: np.random.Generator,
    customers: list[int],
    legacy_ids: np.ndarray,
    preferred: np.ndarray,
    looks_like: np.ndarray,
    satisfaction: np.ndarray,
) -> pd.DataFrame:
    rows = []
    for index in customers:
        count = int(rng.integers(3, 9))
        # Mostly the preferred category, otherwise any; the majority is the merge's target.
        favourite = rng.random(count) < 0.7
        categories = np.where(
            favourite, preferred[index], rng.integers(len(CATEGORIES), size=count)
        )
        for category in categories:
            # Spending follows what was bought, nudged by how the customer behaves.
            mean = 0.75 * _AMOUNT_MEAN[category] + 0.25 * _AMOUNT_MEAN[looks_like[index]]
            amount = int(np.clip(round(rng.normal(mean, _AMOUNT_SD[category])), 10, 600))
            rating = 3.0 + satisfaction[index] + _RATING_SHIFT[category] + rng.normal(0, 0.6)
            day = int(rng.integers(0, 365))
            rows.append((int(legacy_ids[index]), amount, day, CATEGORIES[category], rating))
    frame = pd.DataFrame(
        rows, columns=["customer_id_legacy", "purchase_amount", "day", "product_category", "rating"]
    )
    frame = frame.sort_values(["day", "customer_id_legacy"], kind="stable").reset_index(drop=True)
    ratings = np.round(np.clip(frame["rating"].to_numpy(), 1.0, 5.0), 1)
    missing = rng.random(len(frame)) < 0.05
    return pd.DataFrame(
        {
            "customer_id_legacy": frame["customer_id_legacy"],
            "transaction_id": np.arange(FIRST_TRANSACTION_ID, FIRST_TRANSACTION_ID + len(frame)),
            "purchase_amount": frame["purchase_amount"],
            "purchase_date": [
                (FIRST_DATE + datetime.timedelta(days=int(day))).isoformat() for day in frame["day"]
            ],
            "product_category": frame["product_category"],
            "customer_rating": np.where(missing, np.nan, ratings),
        }
    )


def _with_exact_duplicates(
    rng: np.random.Generator, frame: pd.DataFrame, count: int
) -> pd.DataFrame:
    """The frame with ``count`` of its rows repeated verbatim, at shuffled positions."""
    repeated = frame.iloc[rng.choice(len(frame), size=count, replace=False)]
    combined = pd.concat([frame, repeated], ignore_index=True)
    return combined.iloc[rng.permutation(len(combined))].reset_index(drop=True)

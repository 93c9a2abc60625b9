"""Speed of `mmauth merge` as the customer tables grow, on synthetic assignment-shaped tables.

    .venv/bin/python -m benchmarks.merge [--sizes 1000 10000 100000] [--repeats 3]

For each size N: N transactions under N/10 legacy ids, 3N/10 profile rows (about three platforms
per customer) and a many-to-many mapping of N/5 rows, with 2% exact duplicate rows and 5% missing
ratings; a fixed seed. Prints the median wall time of merge_customers (reading, cleaning, joining,
writing) over the repeats, rows per second, joined rows, and the process's peak RSS at the end.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from engine.core.settings import Settings
from engine.core.workspace import Workspace
from engine.customers.merge import merge_customers


def write_tables(folder: Path, transactions: int, seed: int = 0) -> None:
    """Assignment-shaped tables of the given size in ``folder``."""
    rng = np.random.default_rng(seed)
    customers = max(transactions // 10, 2)
    profile_rows = 3 * customers
    profiles = pd.DataFrame(
        {
            "customer_id_new": [f"A{i}" for i in rng.integers(0, customers, profile_rows)],
            "social_media_platform": rng.choice(["Twitter", "LinkedIn", "TikTok"], profile_rows),
            "engagement_score": rng.integers(50, 100, profile_rows),
            "purchase_interest_score": rng.uniform(1, 5, profile_rows).round(1),
            "review_sentiment": rng.choice(["Positive", "Neutral", "Negative"], profile_rows),
        }
    )
    ratings = rng.uniform(1, 5, transactions).round(1).astype(object)
    ratings[rng.random(transactions) < 0.05] = ""
    days = rng.integers(0, 365, transactions)
    sales = pd.DataFrame(
        {
            "customer_id_legacy": rng.integers(0, customers, transactions),
            "transaction_id": np.arange(transactions),
            "purchase_amount": rng.integers(10, 500, transactions),
            "purchase_date": (pd.Timestamp("2024-01-01") + pd.to_timedelta(days, "D")).strftime(
                "%Y-%m-%d"
            ),
            "product_category": rng.choice(["Books", "Sports", "Clothing"], transactions),
            "customer_rating": ratings,
        }
    )
    links = 2 * customers
    mapping = pd.DataFrame(
        {
            "customer_id_legacy": rng.integers(0, customers, links),
            "customer_id_new": [f"A{i}" for i in rng.integers(0, customers, links)],
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (
        ("customer_social_profiles.csv", profiles),
        ("customer_transactions.csv", sales),
        ("id_mapping.csv", mapping),
    ):
        copies = frame.sample(frac=0.02, random_state=seed)
        pd.concat([frame, copies]).to_csv(folder / name, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{'transactions':>12} {'median s':>9} {'rows/s':>9} {'joined rows':>11} {'customers':>9}"
    )
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            workspace = Workspace(Path(folder))
            write_tables(workspace.customers_dir, size)
            seconds = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                report = merge_customers(workspace, Settings())
                seconds.append(time.perf_counter() - start)
        median = statistics.median(seconds)
        rows = sum(report.rows_in.values())
        print(
            f"{size:>12} {median:>9.3f} {rows / median:>9.0f} {report.joined_rows:>11} "
            f"{report.customers_out:>9}"
        )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the whole run: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()

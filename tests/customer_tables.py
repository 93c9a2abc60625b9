"""Tiny customer tables in both shapes, for the merge's engine and CLI tests.

The expected figures below are worked out by hand from these rows (see the comments).
"""

from __future__ import annotations

from pathlib import Path

from engine.core.workspace import Workspace

# Assignment shape. Legacy 10 maps to both A1 and A2 (many-to-many, and not "strip the A"),
# legacy 20 to A1; legacy 30 maps to A9, which has no profile; legacy 40 is not in the mapping;
# legacy 50 has no transactions; A3 gets no transactions. One profile row and one mapping row
# are exact duplicates; transaction 2 has no rating.
ASSIGNMENT_PROFILES = """\
customer_id_new,social_media_platform,engagement_score,purchase_interest_score,review_sentiment
A1,Twitter,80,4.0,Positive
A1,LinkedIn,60,2.0,Negative
A1,Twitter,80,4.0,Positive
A2,TikTok,70,3.0,Neutral
A3,Facebook,90,1.0,Positive
"""
ASSIGNMENT_TRANSACTIONS = """\
customer_id_legacy,transaction_id,purchase_amount,purchase_date,product_category,customer_rating
10,1,100,2024-01-01,Books,4.0
10,2,200,2024-01-05,Sports,
20,3,50,2024-01-03,Books,2.0
30,4,70,2024-01-04,Books,3.0
40,5,10,2024-01-02,Sports,1.0
"""
ASSIGNMENT_MAPPING = """\
customer_id_legacy,customer_id_new
10,A2
10,A1
20,A1
30,A9
20,A1
50,A3
"""
ASSIGNMENT_FILES = {
    "customer_social_profiles.csv": ASSIGNMENT_PROFILES,
    "customer_transactions.csv": ASSIGNMENT_TRANSACTIONS,
    "id_mapping.csv": ASSIGNMENT_MAPPING,
}
# A1: transactions 1, 2, 3 (Books, Sports, Books) x 2 distinct profile rows = 6 joined rows;
# A2: transactions 1, 2 (Books, Sports: a tie, Sports is the latest) x 1 profile row = 2.
ASSIGNMENT_JOINED_ROWS = 8
# As given: (10,A2) 2x1 + (10,A1) 2x3 + (20,A1) twice 1x3 = 14.
ASSIGNMENT_JOINED_ROWS_AS_GIVEN = 14

# Profile shape: one profile row per customer, transactions under the same ids. C1's categories
# tie (Books 10 days ago, Sports 5 days ago: Sports wins); C2 has no followers; C3 no purchases;
# C9 bought without a profile.
PROFILE_PROFILES = """\
customer_id,age,gender,location,social_media_activity,followers_count,posts_per_week,engagement_rate
C1,30,F,Kigali,High,1000,5,0.05
C2,40,M,Nairobi,Low,0,1,0.02
C3,25,F,Kigali,Medium,500,3,0.04
"""
PROFILE_TRANSACTIONS = """\
customer_id,purchase_amount,purchase_frequency,last_purchase_days,satisfaction_score,product_category
C1,100,2,10,4,Books
C1,200,3,5,NA,Sports
C2,50,1,30,3,Books
C9,10,1,1,5,Books
"""
PROFILE_FILES = {
    "customer_profiles.csv": PROFILE_PROFILES,
    "transactions.csv": PROFILE_TRANSACTIONS,
}


def write_customer_tables(workspace: Workspace, files: dict[str, str | None]) -> Path:
    """Write file name -> text into the workspace's customers folder (None deletes the file)."""
    folder = workspace.customers_dir
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        if text is None:
            (folder / name).unlink(missing_ok=True)
        else:
            (folder / name).write_text(text, encoding="utf-8")
    return folder

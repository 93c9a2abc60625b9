from ._product_comparison import ModelComparison as ModelComparison
from .dtw import dtw_cost as dtw_cost
from .evaluation import (
    EvaluationReport as EvaluationReport,
    evaluate_models as evaluate_models,
    evaluation_path as evaluation_path,
    report_document as report_document,
)
from .face import FaceIdentifier as FaceIdentifier, FaceMatch as FaceMatch
from .loading import ModelBundle as ModelBundle, load_model_bundle as load_model_bundle
from .names import MODEL_NAMES as MODEL_NAMES
from .product import ProductRecommender as ProductRecommender
from .recommend import (
    Recommendation as Recommendation,
    load_product_table as load_product_table,
    read_merged_dataset as read_merged_dataset,
    recommend_for_member as recommend_for_member,
)
from .saving import ModelRecord as ModelRecord, save_models as save_models
from .training import (
    SUMMARY_COLUMNS as SUMMARY_COLUMNS,
    TrainingResult as TrainingResult,
    face_table_backend as face_table_backend,
    train_models as train_models,
)
from .voice import (
    ClaimScores as ClaimScores,
    VoiceMatch as VoiceMatch,
    VoiceVerifier as VoiceVerifier,
)

__all__ = [
    "MODEL_NAMES",
    "SUMMARY_COLUMNS",
    "ClaimScores",
    "EvaluationReport",
    "FaceIdentifier",
    "FaceMatch",
    "ModelBundle",
    "ModelComparison",
    "ModelRecord",
    "ProductRecommender",
    "Recommendation",
    "TrainingResult",
    "VoiceMatch",
    "VoiceVerifier",
    "dtw_cost",
    "evaluate_models",
    "evaluation_path",
    "face_table_backend",
    "load_model_bundle",
    "load_product_table",
    "read_merged_dataset",
    "recommend_for_member",
    "report_document",
    "save_models",
    "train_models",
]

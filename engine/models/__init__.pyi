from ._product_comparison import ModelComparison as ModelComparison
from .dtw import dtw_cost as dtw_cost
from .evaluation import EvaluationReport as EvaluationReport
from .evaluation import evaluate_models as evaluate_models
from .evaluation import evaluation_path as evaluation_path
from .evaluation import report_document as report_document
from .face import FaceIdentifier as FaceIdentifier
from .face import FaceMatch as FaceMatch
from .fusion import FusionDecision as FusionDecision
from .fusion import ScoreFusion as ScoreFusion
from .persistence import MODEL_NAMES as MODEL_NAMES
from .persistence import ModelBundle as ModelBundle
from .persistence import ModelRecord as ModelRecord
from .persistence import load_model_bundle as load_model_bundle
from .persistence import save_models as save_models
from .product import ProductRecommender as ProductRecommender
from .recommend import Recommendation as Recommendation
from .recommend import load_product_table as load_product_table
from .recommend import read_merged_dataset as read_merged_dataset
from .recommend import recommend_for_member as recommend_for_member
from .training import SUMMARY_COLUMNS as SUMMARY_COLUMNS
from .training import TrainingResult as TrainingResult
from .training import face_table_backend as face_table_backend
from .training import train_models as train_models
from .voice import ClaimScores as ClaimScores
from .voice import VoiceMatch as VoiceMatch
from .voice import VoiceVerifier as VoiceVerifier

__all__ = [
    "MODEL_NAMES",
    "SUMMARY_COLUMNS",
    "ClaimScores",
    "EvaluationReport",
    "FaceIdentifier",
    "FaceMatch",
    "FusionDecision",
    "ModelBundle",
    "ModelComparison",
    "ModelRecord",
    "ProductRecommender",
    "Recommendation",
    "ScoreFusion",
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

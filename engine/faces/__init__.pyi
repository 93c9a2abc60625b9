from .detect import (
    FaceRegion as FaceRegion,
)
from .extract import (
    extract_face_features as extract_face_features,
    face_vector as face_vector,
    is_failure_to_acquire as is_failure_to_acquire,
)
from .images import (
    LoadedImage as LoadedImage,
    read_image as read_image,
)

__all__ = [
    "LoadedImage",
    "read_image",
    "FaceRegion",
    "face_vector",
    "extract_face_features",
    "is_failure_to_acquire",
]

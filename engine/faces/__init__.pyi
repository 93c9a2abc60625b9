from .detect import (
    FaceRegion as FaceRegion,
)
from .extract import (
    extract_face_features as extract_face_features,
)
from .extract import (
    face_vector as face_vector,
)
from .extract import (
    is_failure_to_acquire as is_failure_to_acquire,
)
from .images import (
    LoadedImage as LoadedImage,
)
from .images import (
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

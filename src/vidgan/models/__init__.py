"""Paper models. Importing this package registers every model in `MODELS`."""

from vidgan.models.base import Latents, VideoGenerator
from vidgan.models.registry import MODELS, ModelSpec, get_model, register_model

# One import line per model file (each registers itself):

__all__ = ["MODELS", "Latents", "ModelSpec", "VideoGenerator", "get_model", "register_model"]

"""Paper models. Importing this package registers every model in `MODELS`."""

# Each model module registers itself on import.
from vidgan.models import digan, fmr, g3an  # noqa: F401
from vidgan.models.base import Latents, VideoGenerator
from vidgan.models.registry import MODELS, ModelSpec, get_model, register_model

__all__ = ["MODELS", "Latents", "ModelSpec", "VideoGenerator", "get_model", "register_model"]

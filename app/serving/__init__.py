"""The serving model: a promoted version loaded, compiled and swapped without a restart.

``model`` holds ``ServingModel`` (one immutable loaded version) and ``ModelHolder`` (which
swaps it); ``compiled`` turns the fitted pipeline into arrays. The request path goes one way:
``assignment`` (and every other endpoint feature) reads a ``ServingModel``; nothing here
imports an endpoint feature.
"""

from app.serving.compiled import Assignment, CompiledAssigner, UnsupportedPipeline
from app.serving.model import ModelHolder, ServingModel, build_serving_model, every

__all__ = [
    "Assignment",
    "CompiledAssigner",
    "ModelHolder",
    "ServingModel",
    "UnsupportedPipeline",
    "build_serving_model",
    "every",
]

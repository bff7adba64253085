"""Real-time customer segmentation: training job, model store and assignment service."""

__version__ = "0.1.0"

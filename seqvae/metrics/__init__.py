"""Evaluation metrics (molecules now; text and conditional control extend this package)."""

from .molecules import (
    fraction_novel,
    fraction_unique,
    fraction_valid,
    reconstruction_accuracy,
    sample_quality,
)

__all__ = ["fraction_valid", "fraction_unique", "fraction_novel", "sample_quality", "reconstruction_accuracy"]

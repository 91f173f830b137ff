"""Evaluation metrics: generation quality (the MOSES set), conditional control, latent diagnostics."""

from .latent import latent_diagnostics, mutual_information, teacher_forced_token_counts
from .molecules import (
    fraction_novel,
    fraction_unique,
    fraction_valid,
    reconstruction_accuracy,
    sample_quality,
)
from .moses import ReferenceStatistics, moses_metrics, reference_statistics

__all__ = [
    "fraction_valid",
    "fraction_unique",
    "fraction_novel",
    "sample_quality",
    "reconstruction_accuracy",
    "moses_metrics",
    "reference_statistics",
    "ReferenceStatistics",
    "latent_diagnostics",
    "mutual_information",
    "teacher_forced_token_counts",
]

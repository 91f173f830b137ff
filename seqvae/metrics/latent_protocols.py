"""The arithmetic of the published latent-space protocols, on plain strings and numbers.

* Reconstruction (Gomez-Bombarelli et al. 2018; Jin et al. 2018, Table 1): each test molecule
  is encoded several times and each code decoded several times; the rate is the share of all
  decodings whose canonical SMILES equals the input's.
* Interpolation: decoded paths between two molecules' latents; endpoints that decode to their
  inputs, validity along the path, and smoothness (similarity to the start falls as the path
  moves away from it).
* Constrained optimisation (Jin et al. 2018, Table 3): per start molecule, the best score gain
  among the decoded molecules at least ``delta`` similar to it.

The model-running parts (encoding, decoding, gradient ascent) are in
``benchmarks/latent_quality.py``; what is here can be checked by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import spearmanr

from ..chem import canonical_smiles, count_tanimoto_similarity, to_mol

__all__ = [
    "reconstruction_rate",
    "interpolation_scores",
    "optimisation_success",
    "OPTIMISATION_DELTAS",
]

OPTIMISATION_DELTAS = (0.0, 0.2, 0.4, 0.6)  # the similarity thresholds of JT-VAE's Table 3


def reconstruction_rate(inputs: Sequence[str], decodings: Sequence[Sequence[str]]) -> float:
    """Share of all decodings equal (as canonical SMILES) to their input.

    Args:
        inputs: ``N`` molecules.
        decodings: for each input, its decodings (e.g. 10 encodings x 10 decodings = 100).
    """
    if len(inputs) != len(decodings):
        raise ValueError(f"{len(inputs)} inputs but {len(decodings)} lists of decodings")
    matches = total = 0
    for original, outputs in zip(inputs, decodings):
        target = canonical_smiles(original)
        matches += sum(target is not None and canonical_smiles(output) == target for output in outputs)
        total += len(outputs)
    if total == 0:
        raise ValueError("no decodings to score")
    return matches / total


def interpolation_scores(starts: Sequence[str], ends: Sequence[str], paths: Sequence[Sequence[str]]) -> dict:
    """Scores of decoded interpolation paths, each running from ``starts[i]`` to ``ends[i]``.

    Returns:
        ``endpoint_reconstruction``: share of path ends (first and last points) equal to their
        input; ``path_validity``: share of valid molecules over all points; ``smoothness``:
        mean over paths of ``-Spearman(step, similarity to the start)`` computed on the valid
        points (1: similarity falls at every step; paths with fewer than 3 valid points or a
        constant similarity are left out, and counted in ``paths_scored``).
    """
    if not len(starts) == len(ends) == len(paths):
        raise ValueError(f"{len(starts)} starts, {len(ends)} ends and {len(paths)} paths: give one of each per pair")
    endpoint_hits = valid_points = all_points = 0
    correlations = []
    for start, end, path in zip(starts, ends, paths):
        for source, decoded in ((start, path[0]), (end, path[-1])):
            target = canonical_smiles(source)
            endpoint_hits += target is not None and canonical_smiles(decoded) == target
        start_mol = to_mol(start)
        steps, similarities = [], []
        for step, smiles in enumerate(path):
            mol = to_mol(smiles)
            all_points += 1
            if mol is None:
                continue
            valid_points += 1
            steps.append(step)
            similarities.append(count_tanimoto_similarity(start_mol, mol))
        if len(steps) >= 3 and len(set(similarities)) > 1:
            correlations.append(-spearmanr(steps, similarities).statistic)
    return {
        "endpoint_reconstruction": endpoint_hits / (2 * len(paths)) if paths else math.nan,
        "path_validity": valid_points / all_points if all_points else math.nan,
        "smoothness": float(np.mean(correlations)) if correlations else math.nan,
        "paths_scored": len(correlations),
    }


def optimisation_success(
    start_scores: Sequence[float],
    candidates: Sequence[Sequence[tuple[float, float]]],
    deltas: Sequence[float] = OPTIMISATION_DELTAS,
) -> dict[str, dict]:
    """JT-VAE's Table 3 figures from each start's candidates ``(similarity, score)``.

    For each ``delta``, a start's improvement is the largest ``score - start score`` over its
    candidates with ``similarity >= delta`` and a higher score, and 0 when there is none (the
    start molecule is kept). The mean and standard deviation run over all starts; the success
    rate is the share of starts with an improvement above 0.

    Returns:
        ``{"0.4": {"improvement_mean", "improvement_sd", "success_rate", "mean_similarity",
        "improvement_mean_successes"}}`` keyed by ``delta`` as a string; the last two average
        over the successes only (papers differ in which mean they print).
    """
    if len(start_scores) != len(candidates):
        raise ValueError(f"{len(start_scores)} start scores but {len(candidates)} candidate lists")
    results = {}
    for delta in deltas:
        gains, similarities = [], []
        for start_score, options in zip(start_scores, candidates):
            best, best_similarity = 0.0, None
            for similarity, score in options:
                if similarity >= delta and score - start_score > best:
                    best, best_similarity = score - start_score, similarity
            gains.append(best)
            if best_similarity is not None:
                similarities.append(best_similarity)
        gains = np.asarray(gains, dtype=float)
        results[f"{delta:g}"] = {
            "improvement_mean": float(gains.mean()) if gains.size else math.nan,
            "improvement_sd": float(gains.std()) if gains.size else math.nan,
            "success_rate": float((gains > 0).mean()) if gains.size else math.nan,
            "mean_similarity": float(np.mean(similarities)) if similarities else math.nan,
            "improvement_mean_successes": float(gains[gains > 0].mean()) if (gains > 0).any() else math.nan,
        }
    return results

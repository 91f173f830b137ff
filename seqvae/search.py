"""Work on your own library with a trained model: nearest neighbours and per-molecule scores.

* :class:`LibraryIndex`: a list of SMILES indexed by posterior means (Euclidean nearest
  neighbours through scikit-learn's ``NearestNeighbors``) and by Morgan fingerprints (Tanimoto
  through RDKit's ``BulkTanimotoSimilarity``). A row that is not a valid molecule keeps its
  place: it is flagged, counted and left out of the index, never dropped silently.
* :func:`score_molecules`: per molecule the negative ELBO (nats), the greedy reconstruction,
  and the most similar molecule of a reference set (the run's training molecules).

Fingerprints are Morgan, radius 2, 2,048 bits: the ones :func:`seqvae.chem.tanimoto_similarity`
compares, so similarities here equal those of ``vae.neighbours`` and the pictures.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import torch
from rdkit import DataStructs
from tqdm.auto import tqdm

from .chem import canonical_smiles, morgan_fingerprint
from .errors import SeqVAEError
from .generation import check_count
from .inference import SLOW_ENCODING, wants_progress
from .modeling import SeqVAE, eval_mode, gaussian_kl_per_dim, target_token_nll

__all__ = ["LibraryIndex", "FingerprintSet", "score_molecules", "SEARCH_METRICS", "SLOW_SCORING"]

logger = logging.getLogger(__name__)

SEARCH_METRICS = ("latent", "tanimoto")
SLOW_SCORING = 200  # molecules: each is decoded greedily, about as slow as sampling one


def _as_rows(items, what: str) -> list:
    """One string or a list / Series of them, as a list; a table is refused with the fix."""
    if isinstance(items, str):
        return [items]
    if isinstance(items, pd.DataFrame):
        raise SeqVAEError(f"{what}: give a list or a column of SMILES, e.g. frame['smiles'], not a whole DataFrame")
    return list(items)


def _molecule_key(normalized: str | None, representation: str) -> str | None:
    """What makes two inputs the same molecule (canonical SMILES) or sentence (its text)."""
    if normalized is None or representation == "text":
        return normalized
    return canonical_smiles(normalized)


class FingerprintSet:
    """Morgan fingerprints of molecules, searched by Tanimoto similarity.

    Args:
        smiles: the molecules (already normalised); each must be valid.
        progress: a progress bar; by default only for a large set.
    """

    def __init__(self, smiles: list[str], progress: bool | None = False):
        self.smiles = list(smiles)
        shown = wants_progress(progress, len(self.smiles), SLOW_ENCODING)
        self.fingerprints = [
            morgan_fingerprint(s) for s in tqdm(self.smiles, desc="fingerprints", unit="mol", disable=not shown)
        ]

    def __len__(self) -> int:
        return len(self.fingerprints)

    def similarities(self, smiles: str) -> np.ndarray:
        """Tanimoto similarity of ``smiles`` to every molecule of the set, ``[len(self)]``."""
        return np.asarray(DataStructs.BulkTanimotoSimilarity(morgan_fingerprint(smiles), self.fingerprints))

    def most_similar(self, smiles: str) -> tuple[int, float]:
        """Position and similarity of the set's molecule most similar to ``smiles``."""
        values = self.similarities(smiles)
        best = int(values.argmax())
        return best, float(values[best])


class LibraryIndex:
    """A library of SMILES (or sentences) indexed for nearest-neighbour search with a model.

    Build it with :meth:`build` (or ``vae.index(library)``). Rows are numbered as given,
    from 0; :attr:`table` lists every row with ``valid``, and only valid rows are indexed.
    """

    def __init__(self, vae, library: list, keys: list[str | None], latents: np.ndarray, fingerprints: FingerprintSet | None):
        from sklearn.neighbors import NearestNeighbors

        self.vae = vae
        self.library = library
        self.keys = keys
        self.rows = np.array([row for row, key in enumerate(keys) if key is not None], dtype=np.int64)
        self.latents = latents
        self.fingerprints = fingerprints
        self._nearest = NearestNeighbors().fit(latents)
        self._positions_by_key: dict[str, list[int]] = {}
        for position, row in enumerate(self.rows):
            self._positions_by_key.setdefault(keys[row], []).append(position)

    @classmethod
    def build(cls, vae, library, batch_size: int = 512, progress: bool | None = None) -> "LibraryIndex":
        """Encode every valid row (posterior means) and fingerprint it (molecule models).

        Invalid rows (unparsable, empty, not a string) stay in :attr:`table` with
        ``valid=False`` and are counted in a warning; an index needs at least one valid row.
        """
        library = _as_rows(library, "the library")
        normalized = vae.normalize_each(library)
        keys = [_molecule_key(item, vae.representation) for item in normalized]
        valid = [item for item, key in zip(normalized, keys) if key is not None]
        if not valid:
            raise SeqVAEError(
                f"none of the {len(library)} library rows is a valid "
                f"{'sentence' if vae.representation == 'text' else 'molecule'}; nothing to index"
            )
        _warn_about_invalid_rows(library, keys)
        shown = wants_progress(progress, len(valid), SLOW_ENCODING)
        latents = vae._encode_normalized(valid, batch_size, shown).float().cpu().numpy()
        fingerprints = None if vae.representation == "text" else FingerprintSet(valid, progress=shown)
        return cls(vae, library, keys, latents, fingerprints)

    def __len__(self) -> int:
        return len(self.library)

    @property
    def num_indexed(self) -> int:
        return len(self.rows)

    @property
    def invalid_rows(self) -> list[int]:
        """Library rows left out of the index because they are not valid."""
        return [row for row, key in enumerate(self.keys) if key is None]

    @property
    def table(self) -> pd.DataFrame:
        """Every library row in order: ``row``, ``smiles`` (as given) and ``valid`` (indexed)."""
        return pd.DataFrame(
            {
                "row": range(len(self.library)),
                "smiles": pd.Series(self.library, dtype=object),  # as given: None stays None
                "valid": [key is not None for key in self.keys],
            }
        )

    def __repr__(self) -> str:
        return (
            f"LibraryIndex({len(self):,} rows: {self.num_indexed:,} indexed, {len(self.invalid_rows):,} invalid "
            f"(flagged in .table), latent_dim={self.latents.shape[1]})"
        )

    def search(self, query, k: int = 10, by: str = "latent") -> pd.DataFrame:
        """The ``k`` library molecules nearest to each query, nearest first.

        Args:
            query: one SMILES or a list of them (invalid ones are an error naming them).
            k: neighbours per query (fewer when the index holds fewer molecules).
            by: ``latent`` (Euclidean distance of posterior means) or ``tanimoto`` (Morgan
                fingerprints, radius 2; molecule models only).

        Returns:
            One row per neighbour: ``query``, ``rank`` (1 = nearest), ``library_row``,
            ``smiles`` (the library row as given) and ``distance`` (latent) or ``similarity``
            (Tanimoto). A query that is in the library comes first in its own list, whatever
            rounding gives its distance or however many other molecules share its fingerprint.
        """
        check_count("k", k)
        if by not in SEARCH_METRICS:
            raise SeqVAEError(f"by must be one of {', '.join(SEARCH_METRICS)}, got {by!r}")
        if by == "tanimoto" and self.fingerprints is None:
            raise SeqVAEError("Tanimoto search compares molecules; this is a text model: search with by='latent'")
        queries = _as_rows(query, "the query")
        normalized = self.vae.normalize(queries)  # an invalid query is an error naming it
        found = self._by_latent(normalized, k) if by == "latent" else self._by_tanimoto(normalized, k)
        blocks = [self._result_block(item, positions, values, by) for item, (positions, values) in zip(queries, found)]
        return pd.concat(blocks, ignore_index=True)

    def _own_positions(self, normalized: str) -> list[int]:
        """Index positions holding the query's own molecule (several when the library repeats it)."""
        return self._positions_by_key.get(_molecule_key(normalized, self.vae.representation), [])

    def _by_latent(self, normalized: list[str], k: int) -> list[tuple[list[int], np.ndarray]]:
        latents = self.vae._encode_normalized(normalized).float().cpu().numpy()
        own = [self._own_positions(item) for item in normalized]
        wanted = min(k + max(len(positions) for positions in own), self.num_indexed)
        _, nearest = self._nearest.kneighbors(latents, n_neighbors=wanted)
        found = []
        for z, own_positions, candidates in zip(latents, own, nearest):
            positions = _own_first(own_positions, candidates, k)
            found.append((positions, np.linalg.norm(self.latents[positions] - z, axis=1)))
        return found

    def _by_tanimoto(self, normalized: list[str], k: int) -> list[tuple[list[int], np.ndarray]]:
        found = []
        for item in normalized:
            own = self._own_positions(item)
            similarities = self.fingerprints.similarities(item)
            wanted = min(k + len(own), len(similarities))
            top = np.argpartition(-similarities, wanted - 1)[:wanted]  # the best, unordered: no full sort
            candidates = top[np.argsort(-similarities[top], kind="stable")]
            positions = _own_first(own, candidates, k)
            found.append((positions, similarities[positions]))
        return found

    def _result_block(self, query: str, positions: list[int], values: np.ndarray, by: str) -> pd.DataFrame:
        rows = self.rows[positions]
        return pd.DataFrame(
            {
                "query": query,
                "rank": range(1, len(rows) + 1),
                "library_row": rows,
                "smiles": [self.library[row] for row in rows],
                "distance" if by == "latent" else "similarity": values,
            }
        )


def _own_first(own: list[int], candidates, k: int) -> list[int]:
    """The query's own molecule first, then the other candidates in their order, ``k`` in all."""
    rest = [int(position) for position in candidates if position not in own]
    return (list(own) + rest)[:k]


def _warn_about_invalid_rows(library: list, keys: list[str | None]) -> None:
    invalid = [row for row, key in enumerate(keys) if key is None]
    if invalid:
        logger.warning(
            "%d of %d library rows are not valid and were not indexed (kept in place, valid=False in "
            "index.table); the first is row %d: %r",
            len(invalid), len(library), invalid[0], str(library[invalid[0]])[:60],
        )


# ------------------------------------------------------------------------------------- scores


def score_molecules(
    vae,
    items,
    reference: FingerprintSet | None = None,
    *,
    num_samples: int = 8,
    seed: int = 0,
    batch_size: int = 128,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Per input, in order: how well the model explains it, and the nearest reference molecule.

    Args:
        vae: a trained model (:class:`~seqvae.inference.SeqVAEInference`).
        items: SMILES (or sentences); invalid ones keep their row with ``valid=False``.
        reference: molecules to find the most similar of (the training set); ``None``: no
            such columns.
        num_samples: draws ``z ~ q(z|x)`` averaged into the ELBO estimate.
        seed: seed of those draws. The same draws serve every input, so an input's score
            does not depend on the other inputs or on the batch size.
        progress: a progress bar; by default from ``SLOW_SCORING`` inputs on.

    Returns:
        ``smiles`` (as given), ``valid``, ``reconstruction_nll`` (``-E_q log p(x|z)``, nats),
        ``kl`` (``KL(q(z|x) || N(0, I))``, nats), ``neg_elbo`` (their sum: lower is more in
        distribution), ``reconstruction`` (greedy decode of the posterior mean),
        ``reconstructed`` (it is the input's molecule) and, with ``reference``,
        ``nearest_training`` and ``nearest_training_similarity`` (Tanimoto).
    """
    if vae.config.latent_dim == 0:
        raise SeqVAEError(
            "this model has no latent (latent_dim 0, a language model): there is no ELBO or reconstruction "
            "to score; measure its likelihood with seqvae.metrics.text.importance_weighted_nll"
        )
    check_count("num_samples", num_samples)
    check_count("batch_size", batch_size)
    items = _as_rows(items, "score")
    normalized = vae.normalize_each(items)
    valid = [row for row, item in enumerate(normalized) if item is not None]
    noise = torch.randn(num_samples, vae.config.latent_dim, generator=torch.Generator().manual_seed(seed))
    columns = _empty_score_columns(len(items))
    shown = wants_progress(progress, len(valid), SLOW_SCORING)
    with torch.no_grad(), eval_mode(vae.model), tqdm(total=len(valid), desc="scoring", unit="mol", disable=not shown) as bar:
        for start in range(0, len(valid), batch_size):
            rows = valid[start : start + batch_size]
            _score_batch(vae, [normalized[row] for row in rows], noise, rows, columns)
            bar.update(len(rows))
    smiles = pd.Series(items, dtype=object)  # as given: None stays None
    frame = pd.DataFrame({"smiles": smiles, "valid": [item is not None for item in normalized], **columns})
    frame["reconstructed"] = [
        _same(vae.representation, a, b) for a, b in zip(normalized, frame["reconstruction"])
    ]
    if reference is not None and vae.representation != "text":
        frame = frame.assign(**_nearest_reference(reference, normalized))
    return frame


def _empty_score_columns(size: int) -> dict[str, list]:
    return {
        "reconstruction_nll": [math.nan] * size,
        "kl": [math.nan] * size,
        "neg_elbo": [math.nan] * size,
        "reconstruction": [None] * size,
    }


def _score_batch(vae, batch_items: list[str], noise: torch.Tensor, rows: list[int], columns: dict) -> None:
    """Fill the score columns of ``rows``: the ELBO's terms and the greedy reconstruction."""
    batch = vae._tokenize_normalized(batch_items)
    recon, kl, mu = sequence_elbo_terms(vae.model, batch["input_ids"], batch["attention_mask"], noise)
    for row, recon_value, kl_value, text in zip(rows, recon.tolist(), kl.tolist(), vae.decode(mu)):
        columns["reconstruction_nll"][row] = recon_value
        columns["kl"][row] = kl_value
        columns["neg_elbo"][row] = recon_value + kl_value
        columns["reconstruction"][row] = text


def sequence_elbo_terms(model: SeqVAE, input_ids: torch.Tensor, attention_mask: torch.Tensor, noise: torch.Tensor):
    """Per sequence, ``-E_q log p(x|z)`` over the draws ``z = mu + sigma * noise[k]`` and the
    analytic KL to the prior (the terms :meth:`SeqVAE.forward` sums, kept per sequence; nats),
    with the posterior means: ``([B], [B], [B, latent_dim])``.

    ``noise``: ``[K, latent_dim]`` standard-normal draws (zeros: decode from the mean)."""
    mu, logvar = model.encode(input_ids, attention_mask)
    recon = torch.zeros(input_ids.size(0), device=mu.device)
    for draw in noise.to(mu.device):
        logits, _ = model.decode_logits(input_ids[:, :-1], SeqVAE.reparameterize(mu, logvar, draw))
        recon += target_token_nll(logits, input_ids, attention_mask).sum(dim=1)
    return recon / len(noise), gaussian_kl_per_dim(mu, logvar).sum(dim=1), mu


def _same(representation: str, normalized: str | None, output: str | None) -> bool:
    """Whether a reconstruction is the input's molecule (canonical SMILES) or sentence."""
    if normalized is None or output is None:
        return False
    key = _molecule_key(normalized, representation)
    return key is not None and key == _molecule_key(output, representation)


def _nearest_reference(reference: FingerprintSet, normalized: list[str | None]) -> dict[str, list]:
    nearest, similarity = [], []
    for item in normalized:
        position, value = reference.most_similar(item) if item is not None else (None, math.nan)
        nearest.append(None if position is None else reference.smiles[position])
        similarity.append(value)
    return {"nearest_training": nearest, "nearest_training_similarity": similarity}

"""Randomized SMILES for training (``randomized_smiles: true``): each time a molecule is read,
it is spelled from a random atom order (RDKit), for the encoder's input and the decoder's target
alike (Arús-Pous et al. 2019). A small corpus then offers the model many strings per molecule, so
that it learns molecules rather than the one spelling of each; reconstruction is judged on the
molecule (canonical SMILES), so any spelling of the input counts. SELFIES models read the SELFIES
of the random SMILES.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..chem import random_smiles
from ..errors import SeqVAEError
from ..tokenization import molecule_encoder, to_model_text

__all__ = ["SmilesRandomizer"]

logger = logging.getLogger(__name__)

# Share of rows that keep their stored spelling (the random one too long, or outside the
# vocabulary) above which the run is told that the augmentation is mostly off.
FALLBACK_WARNING_SHARE = 0.1
FALLBACK_WARNING_ROWS = 1000


class SmilesRandomizer:
    """Token ids of a randomly spelled SMILES for each molecule of a batch."""

    def __init__(self, tokenizer, representation: str, max_length: int, seed: int = 0):
        if representation not in ("smiles", "selfies"):
            raise SeqVAEError(f"randomized SMILES need molecules (smiles or selfies), got representation {representation!r}")
        self.representation, self.max_length, self.seed = representation, max_length, seed
        self.unk = tokenizer.unk_token_id
        self.encode = molecule_encoder(tokenizer) or (lambda texts: tokenizer(texts)["input_ids"])
        self.rows = self.kept = 0
        self._warned = False
        self._rng: tuple[int, np.random.Generator] | None = None

    def __call__(self, smiles: list[str], own_ids: list) -> list[list[int]]:
        """One row of ids per molecule: a random spelling, or the row's own ids where the random
        one does not fit (longer than ``max_length``, or a token outside the vocabulary)."""
        seeds = self._generator().integers(0, 2**31 - 1, size=len(smiles))
        spelled = [random_smiles(molecule, int(seed)) for molecule, seed in zip(smiles, seeds)]
        texts = [to_model_text(text, self.representation) if text else None for text in spelled]
        encoded = iter(self.encode([text for text in texts if text]))  # one call for the batch
        rows = []
        for text, ids in zip(texts, own_ids):
            new = next(encoded) if text else None
            usable = new is not None and len(new) <= self.max_length and self.unk not in new
            rows.append(new if usable else list(ids))
            self.kept += not usable
        self.rows += len(smiles)
        self._warn_if_mostly_off()
        return rows

    def _generator(self) -> np.random.Generator:
        """A generator per data-loading worker, each its own stream from the run's seed."""
        worker = torch.utils.data.get_worker_info()
        key = 0 if worker is None else worker.id + 1
        if self._rng is None or self._rng[0] != key:
            self._rng = (key, np.random.default_rng([self.seed, key]))
        return self._rng[1]

    def _warn_if_mostly_off(self) -> None:
        if self._warned or self.rows < FALLBACK_WARNING_ROWS or self.kept <= FALLBACK_WARNING_SHARE * self.rows:
            return
        self._warned = True
        logger.warning(
            "randomized_smiles: %d of the first %d molecules kept their stored spelling (the random one was longer "
            "than max_length %d or held a token outside the vocabulary); raise max_length for more augmentation",
            self.kept, self.rows, self.max_length,
        )

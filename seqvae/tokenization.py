"""Tokenizers for molecules, built with the ``tokenizers`` library.

Every tokenizer is a :class:`~transformers.PreTrainedTokenizerFast` over a word-level model whose
vocabulary comes from the training corpus. Molecules are split by a regex pre-tokenizer:

* ``smiles``: atom-level (Schwaller et al. 2019): bracket atoms ``[nH]``, two-letter organic
  atoms ``Cl`` / ``Br``, ring closures ``%10``, bonds and stereo marks ``/ \\ @``;
* ``selfies``: one token per SELFIES symbol ``[...]``; strings are converted from SMILES before
  tokenising and back to SMILES after decoding.

The encoded sequence is ``<bos> tokens <eos>``; decoding fuses tokens without spaces, so
``decode(encode(s)) == s`` whenever every token of ``s`` is in the vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import selfies
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from .errors import SeqVAEError

__all__ = [
    "PAD",
    "BOS",
    "EOS",
    "UNK",
    "SMILES_REGEX",
    "SELFIES_REGEX",
    "REPRESENTATIONS",
    "build_tokenizer",
    "to_model_text",
    "from_model_text",
    "count_unknown",
]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK]

# Alternation order matters: bracket atoms first, two-letter halogens before single letters,
# and a final catch-all so that no character is ever silently dropped.
SMILES_REGEX = (
    r"\[[^\]]+\]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$"
    r"|%[0-9]{2}|[0-9]|."
)
SELFIES_REGEX = r"\[[^\]]*\]|\.|."

REPRESENTATIONS = {"smiles": SMILES_REGEX, "selfies": SELFIES_REGEX}


def to_model_text(smiles: str, representation: str) -> str | None:
    """The string the tokenizer sees for one molecule; ``None`` if it cannot be converted."""
    if representation == "smiles":
        return smiles
    if representation == "selfies":
        try:
            return selfies.encoder(smiles)
        except selfies.EncoderError:
            return None
    raise SeqVAEError(_unknown_representation(representation))


def from_model_text(text: str, representation: str) -> str:
    """Back from decoded model text to SMILES (``""`` when a SELFIES string cannot be decoded)."""
    if representation == "smiles":
        return text
    if representation == "selfies":
        try:
            return selfies.decoder(text) or ""
        except selfies.DecoderError:
            return ""
    raise SeqVAEError(_unknown_representation(representation))


def build_tokenizer(
    texts: Iterable[str], representation: str = "smiles", model_max_length: int = 128
) -> PreTrainedTokenizerFast:
    """Train a word-level vocabulary on ``texts`` (already in the model's representation).

    Args:
        texts: corpus strings, e.g. SMILES for ``"smiles"`` or SELFIES for ``"selfies"``.
        representation: ``"smiles"`` or ``"selfies"``.
        model_max_length: longest sequence (tokens, with ``<bos>``/``<eos>``) the model accepts.
    """
    if representation not in REPRESENTATIONS:
        raise SeqVAEError(_unknown_representation(representation))
    backend = Tokenizer(models.WordLevel(unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(
        Regex(REPRESENTATIONS[representation]), behavior="isolated"
    )
    backend.train_from_iterator(
        texts, trainer=trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=1)
    )
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}",
        special_tokens=[(BOS, backend.token_to_id(BOS)), (EOS, backend.token_to_id(EOS))],
    )
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )


@dataclass
class UnknownTokenCount:
    """How many sequences and tokens fell outside the vocabulary."""

    sequences: int = 0
    tokens: int = 0


def count_unknown(token_id_lists: Iterable[list[int]], unk_token_id: int) -> UnknownTokenCount:
    """Count ``<unk>`` ids in already-encoded sequences (for the data report)."""
    count = UnknownTokenCount()
    for ids in token_id_lists:
        unknown = sum(1 for token_id in ids if token_id == unk_token_id)
        if unknown:
            count.sequences += 1
            count.tokens += unknown
    return count


def _unknown_representation(representation: str) -> str:
    return (
        f"unknown representation {representation!r}: choose one of "
        f"{', '.join(sorted(REPRESENTATIONS))}"
    )

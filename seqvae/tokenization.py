"""Tokenizers for molecules and text, built with the ``tokenizers`` library.

Every tokenizer is a :class:`~transformers.PreTrainedTokenizerFast`, saved next to the model.
Molecules use a word-level model whose vocabulary comes from the training corpus, split by a
regex pre-tokenizer:

* ``smiles``: atom-level (Schwaller et al. 2019): bracket atoms ``[nH]``, two-letter organic
  atoms ``Cl`` / ``Br``, ring closures ``%10``, bonds and stereo marks ``/ \\ @``;
* ``selfies``: one token per SELFIES symbol ``[...]``; strings are converted from SMILES before
  tokenising and back to SMILES after decoding.

Text (``representation="text"``) uses one of:

* ``word``: whitespace-separated words, the ``vocab_size`` most frequent ones seen at least
  ``min_frequency`` times (others become ``<unk>``), decoded with single spaces;
* ``bpe``: byte-pair merges learned on the corpus (Sennrich et al. 2016) up to ``vocab_size``
  symbols, with spaces kept as a word-start mark so decoding restores them;
* any pretrained Hugging Face tokenizer, by Hub name or local folder: its vocabulary is kept,
  and ``<bos>`` / ``<eos>`` / ``<pad>`` are added when it lacks them.

The encoded sequence is ``<bos> tokens <eos>``; for molecules decoding fuses tokens without
spaces, so ``decode(encode(s)) == s`` whenever every token of ``s`` is in the vocabulary.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
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
    "build_text_tokenizer",
    "TEXT_TOKENIZERS",
    "to_model_text",
    "from_model_text",
    "count_unknown",
    "molecule_encoder",
    "extend_vocabulary",
    "VOCABULARY_SAMPLE_SIZE",
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


TEXT_TOKENIZERS = ("word", "bpe")  # trained on the corpus; anything else names a pretrained one


def to_model_text(smiles: str, representation: str) -> str | None:
    """The string the tokenizer sees for one molecule; ``None`` if it cannot be converted."""
    if representation in ("smiles", "text"):
        return smiles
    if representation == "selfies":
        try:
            return selfies.encoder(smiles)
        except selfies.EncoderError:
            return None
    raise SeqVAEError(_unknown_representation(representation))


def from_model_text(text: str, representation: str) -> str:
    """Back from decoded model text to SMILES (``""`` when a SELFIES string cannot be decoded)."""
    if representation in ("smiles", "text"):
        return text
    if representation == "selfies":
        try:
            return selfies.decoder(text) or ""
        except selfies.DecoderError:
            return ""
    raise SeqVAEError(_unknown_representation(representation))


VOCABULARY_SAMPLE_SIZE = 200_000


def build_tokenizer(
    texts: Iterable[str], representation: str = "smiles", model_max_length: int = 128, seed: int = 0
) -> PreTrainedTokenizerFast:
    """Train a word-level vocabulary on ``texts`` (already in the model's representation).

    A corpus larger than ``VOCABULARY_SAMPLE_SIZE`` is learned from a seeded sample of that size
    (learning from all of MOSES's 1.6M molecules costs tens of seconds); tokens the sample missed are added afterwards with
    :func:`extend_vocabulary` by whoever encodes the corpus, so no training token is lost.

    Args:
        texts: corpus strings, e.g. SMILES for ``"smiles"`` or SELFIES for ``"selfies"``.
        representation: ``"smiles"`` or ``"selfies"``.
        model_max_length: longest sequence (tokens, with ``<bos>``/``<eos>``) the model accepts.
        seed: chooses the sample of a large corpus.
    """
    if representation not in REPRESENTATIONS:
        raise SeqVAEError(_unknown_representation(representation))
    texts = list(texts)
    if len(texts) > VOCABULARY_SAMPLE_SIZE:
        texts = random.Random(seed).sample(texts, VOCABULARY_SAMPLE_SIZE)
    backend = Tokenizer(models.WordLevel(unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(
        Regex(REPRESENTATIONS[representation]), behavior="isolated"
    )
    backend.train_from_iterator(
        texts, trainer=trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=1)
    )
    backend.decoder = decoders.Fuse()
    return _with_bos_eos(backend, model_max_length)


def extend_vocabulary(tokenizer: PreTrainedTokenizerFast, tokens: Iterable[str]) -> PreTrainedTokenizerFast:
    """The same molecule tokenizer with ``tokens`` appended to its vocabulary (new ids at the end)."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    vocabulary = state["model"]["vocab"]
    for token in tokens:
        vocabulary.setdefault(token, len(vocabulary))
    backend = Tokenizer.from_str(json.dumps(state))
    return _with_bos_eos(backend, tokenizer.model_max_length)


class MoleculeEncoder:
    """Encodes strings exactly as a molecule tokenizer of :func:`build_tokenizer` does, with
    Python's ``re`` and a dictionary.

    Why: ``re.findall`` on one core outruns the ``Split`` pre-tokenizer of ``tokenizers`` on two
    for this pattern (figures in docs/benchmarks.md). :func:`molecule_encoder` checks it against
    the tokenizer before use.
    """

    def __init__(self, pattern: str, vocabulary: dict[str, int], unk: int, bos: int, eos: int):
        self.pattern = re.compile(pattern)
        self.vocabulary = vocabulary
        self.unk, self.bos, self.eos = unk, bos, eos

    def __call__(self, texts: list[str]) -> list[list[int]]:
        lookup, unk = self.vocabulary.get, self.unk
        return [[self.bos, *(lookup(token, unk) for token in self.pattern.findall(text)), self.eos] for text in texts]

    def unknown_tokens(self, texts: Iterable[str]) -> set[str]:
        """The tokens of ``texts`` outside the vocabulary."""
        return {token for text in texts for token in self.pattern.findall(text) if token not in self.vocabulary}


def molecule_encoder(tokenizer: PreTrainedTokenizerFast, probe: list[str] = ()) -> MoleculeEncoder | None:
    """A :class:`MoleculeEncoder` for a word-level regex tokenizer that encodes ``probe`` exactly
    as the tokenizer does; ``None`` for any other tokenizer (then use the tokenizer itself)."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    splitter = state.get("pre_tokenizer") or {}
    if (
        state["model"]["type"] != "WordLevel"
        or state.get("normalizer") is not None
        or splitter.get("type") != "Split"
        or splitter.get("behavior") != "Isolated"
        or "Regex" not in splitter.get("pattern", {})
    ):
        return None
    encoder = MoleculeEncoder(
        splitter["pattern"]["Regex"], state["model"]["vocab"], tokenizer.unk_token_id,
        tokenizer.bos_token_id, tokenizer.eos_token_id,
    )
    probe = list(probe)
    if probe and encoder(probe) != tokenizer(probe)["input_ids"]:
        return None
    return encoder


def build_text_tokenizer(
    texts: Iterable[str],
    kind: str = "word",
    vocab_size: int = 10000,
    min_frequency: int = 1,
    model_max_length: int = 64,
) -> PreTrainedTokenizerFast:
    """A tokenizer for sentences: trained on ``texts`` (``word`` / ``bpe``) or pretrained.

    Args:
        texts: training sentences (ignored for a pretrained tokenizer).
        kind: ``"word"``, ``"bpe"``, or a pretrained tokenizer's Hub name or local folder.
        vocab_size: vocabulary cap, special tokens included (trained kinds only).
        min_frequency: words (``word``) or merges (``bpe``) seen fewer times are left out.
        model_max_length: longest sequence (tokens, with ``<bos>``/``<eos>``) the model accepts.
    """
    if kind not in TEXT_TOKENIZERS:
        return _pretrained_text_tokenizer(kind, model_max_length)
    if vocab_size <= len(SPECIAL_TOKENS):
        raise SeqVAEError(f"vocab_size must be above {len(SPECIAL_TOKENS)} (the special tokens), got {vocab_size}")
    if min_frequency < 1:
        raise SeqVAEError(f"min_frequency must be at least 1, got {min_frequency}")
    if kind == "word":
        # The vocabulary is counted here, not by WordLevelTrainer: when the corpus itself holds
        # the word "<unk>" (PTB does), that trainer gives it a second id and leaves a hole in
        # the id range, so the largest id reaches past the embedding table.
        backend = Tokenizer(models.WordLevel(word_vocabulary(texts, vocab_size, min_frequency), unk_token=UNK))
        backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # no decoder: words are joined with spaces
    else:
        backend = Tokenizer(models.BPE(unk_token=UNK))
        backend.pre_tokenizer = pre_tokenizers.Metaspace()
        backend.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS)
        backend.train_from_iterator(texts, trainer=trainer)
    return _with_bos_eos(backend, model_max_length)


def word_vocabulary(texts: Iterable[str], vocab_size: int, min_frequency: int) -> dict[str, int]:
    """``{token: id}``: the special tokens, then the ``vocab_size - 4`` most frequent words seen at
    least ``min_frequency`` times (ties broken alphabetically, so the ids are reproducible)."""
    counts = Counter(word for text in texts for word in text.split())
    for token in SPECIAL_TOKENS:
        counts.pop(token, None)
    kept = [word for word, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if count >= min_frequency]
    return {token: index for index, token in enumerate(SPECIAL_TOKENS + kept[: vocab_size - len(SPECIAL_TOKENS)])}


def _with_bos_eos(backend: Tokenizer, model_max_length: int) -> PreTrainedTokenizerFast:
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}",
        special_tokens=[(BOS, backend.token_to_id(BOS)), (EOS, backend.token_to_id(EOS))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )


def _pretrained_text_tokenizer(name: str, model_max_length: int) -> PreTrainedTokenizerFast:
    """A Hub or local tokenizer, given the special tokens the model needs and a post-processor
    that frames every sequence as ``bos tokens eos``."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise SeqVAEError(
            f"unknown tokenizer {name!r}: not 'word' or 'bpe', and no pretrained tokenizer of that "
            f"name or path could be loaded ({str(error).splitlines()[0]}); give a Hub id such as "
            "'bert-base-uncased' or a folder holding tokenizer.json"
        ) from None
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise SeqVAEError(f"tokenizer {name!r} has no fast (Rust) version; choose another")
    # The model needs four distinct roles: GPT-2's single <|endoftext|> (bos = eos = unk) would
    # make a sentence end look like its start, so such tokenizers get our own tokens added.
    # BERT-style tokenizers frame sequences as [CLS] ... [SEP]: those serve as bos and eos.
    if tokenizer.bos_token is None and tokenizer.cls_token is not None and tokenizer.sep_token is not None:
        tokenizer.add_special_tokens({"bos_token": tokenizer.cls_token, "eos_token": tokenizer.sep_token})
    framing = {tokenizer.bos_token_id, tokenizer.eos_token_id}  # before any is replaced: GPT-2's <|endoftext|>
    if tokenizer.bos_token is None or tokenizer.eos_token is None or tokenizer.bos_token_id == tokenizer.eos_token_id:
        tokenizer.add_special_tokens({"bos_token": BOS, "eos_token": EOS})
    framing |= {tokenizer.bos_token_id, tokenizer.eos_token_id}
    if tokenizer.unk_token is None or tokenizer.unk_token_id in framing:
        tokenizer.add_special_tokens({"unk_token": UNK})  # word dropout must not read as a sentence boundary
    if tokenizer.pad_token is None or tokenizer.pad_token_id in framing | {tokenizer.unk_token_id}:
        tokenizer.add_special_tokens({"pad_token": PAD})  # padding must not look like a sentence end or a word
    bos, eos = tokenizer.bos_token, tokenizer.eos_token
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        special_tokens=[(bos, tokenizer.bos_token_id), (eos, tokenizer.eos_token_id)],
    )
    tokenizer.model_max_length = model_max_length
    return tokenizer


@dataclass
class UnknownTokenCount:
    """How many sequences and tokens fell outside the vocabulary."""

    sequences: int = 0
    tokens: int = 0


def count_unknown(
    token_id_lists: Iterable[list[int]], unk_token_id: int, written_as_unknown: Iterable[int] | None = None
) -> UnknownTokenCount:
    """Count ``<unk>`` ids in already-encoded sequences (for the data report).

    ``written_as_unknown``: per sequence, how many ``<unk>`` the input wrote itself (Penn
    Treebank writes rare words as ``<unk>``); those are not vocabulary misses.
    """
    count = UnknownTokenCount()
    written = iter(written_as_unknown) if written_as_unknown is not None else None
    for ids in token_id_lists:
        unknown = sum(1 for token_id in ids if token_id == unk_token_id)
        if written is not None:
            unknown = max(0, unknown - next(written))
        if unknown:
            count.sequences += 1
            count.tokens += unknown
    return count


def _unknown_representation(representation: str) -> str:
    return (
        f"unknown representation {representation!r}: choose one of "
        f"{', '.join(sorted(REPRESENTATIONS))}"
    )

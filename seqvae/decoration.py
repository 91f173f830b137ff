"""Scaffold decoration: molecules that contain a given scaffold, with its attachment points ``*`` filled.

    frame = decorate(vae, "c1ccc(*)cc1C(=O)N*", n=100)

Latents are drawn around the scaffold and decoded; a draw is kept when it is a valid molecule,
new, and contains the scaffold:

1. The scaffold is encoded with each ``*`` capped by a methyl. A methyl, not a hydrogen: the
   posterior of the bare core decodes to the bare core, which has no substituent at the
   attachment points (0-3 % of draws around it contain the decorated scaffold with the shipped
   ZINC model, against 80-100 % around the methyl-capped one).
2. Latents are drawn around an anchor, ``z = mu + scale * sigma * eps`` (the anchor's posterior
   mean and standard deviation).
3. Each latent is decoded, by one of two methods:

   * ``constrained`` (default, SMILES models): the decoder is made to write the scaffold's own
     SMILES tokens (written from a core atom, so that each ``*`` is a branch or the end) and
     samples only the substituents: at each ``*`` it writes freely until it closes that branch,
     or, at the last one, ends the molecule. Ring-closure digits, branches and ``<eos>`` cannot
     start a substituent.
   * ``latent``: the decoder writes the whole molecule (sampled decoding); only draws that
     contain the scaffold are kept. Works for any molecule model, but large scaffolds are seldom
     decoded intact (see benchmarks/results/decoration.json).

4. A draw is kept when it matches the scaffold as an RDKit query in which each ``*`` is any heavy
   atom, so that every attachment point carries a substituent (constrained decoding can still
   miss: a substituent may close a ring onto the core). ``only_at_attachments=True`` also fixes
   the degree of every core atom: substituents then sit at the ``*`` positions only.
5. Every kept molecule becomes an anchor too (a walk through the scaffold-containing region of
   latent space): the decoder is nearly deterministic near one point, so a single anchor yields
   few distinct molecules. ``scale`` adapts each round: it shrinks when few draws keep the
   scaffold (too far out), and grows when most of those that do are repeats (too close).

It stops when ``n`` molecules are found or ``max_draws`` latents have been decoded; the frame's
``attrs["decoration"]`` says how many were drawn, and how many were valid and contained the scaffold.
Conditional models decode every draw with the condition (``condition={"logP": 2.5}``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass, field

import pandas as pd
import torch
from rdkit import Chem
from torch.nn import functional as F

from .chem import MAX_SMILES_CHARACTERS, to_mol
from .conditions import check_condition, property_table
from .errors import SeqVAEError
from .generation import (
    check_count,
    check_decoding_options,
    decode_latents,
    draw_tokens,
    filter_logits,
    ids_to_strings,
    is_finite_number,
)
from .modeling import eval_mode
from .threads import adapt_threads
from .tokenization import SMILES_REGEX

__all__ = ["Scaffold", "contains_scaffold", "decorate", "parse_scaffold"]

logger = logging.getLogger(__name__)

SCALE_STEP = 1.5  # the factor by which the neighbourhood grows or shrinks after a round
FEW_CONTAINING = 0.2  # fewer draws than this hold the scaffold: too far out, shrink
MOSTLY_REPEATS = 0.5  # fewer of those than this are new: too close to the anchors, grow
DRAWS_PER_MOLECULE = 50  # default budget: max_draws = 50 * n


@dataclass(frozen=True)
class Scaffold:
    """A parsed scaffold: its text, the substructure queries, and the anchor that is encoded."""

    text: str
    attachment_points: int
    query: Chem.Mol  # each * is any heavy atom
    strict_query: Chem.Mol  # and each core atom keeps its degree: substituents only at the *
    anchor: str  # canonical SMILES with every * capped by a methyl
    template: tuple[str, ...]  # the SMILES written from a core atom, cut at each *: what is forced


def parse_scaffold(text: str) -> Scaffold:
    """Check and parse a scaffold SMILES such as ``"c1ccc(*)cc1C(=O)N*"``.

    Raises :class:`SeqVAEError` when it does not parse or has no attachment point ``*``.
    """
    mol = _scaffold_mol(text)
    dummies = [atom.GetIdx() for atom in mol.GetAtoms() if atom.GetAtomicNum() == 0]
    if not dummies:
        raise SeqVAEError(
            f"scaffold {text!r} has no attachment point: mark each position to decorate with *, "
            "e.g. 'c1ccc(*)cc1' for a substituted benzene"
        )
    if len(dummies) == mol.GetNumAtoms():
        raise SeqVAEError(f"scaffold {text!r} is only attachment points: give the core atoms too, e.g. 'c1ccc(*)cc1'")
    _check_attachment_points(mol, text)
    return Scaffold(
        text=text,
        attachment_points=len(dummies),
        query=_attachment_query(mol, dummies, fixed_degree=False),
        strict_query=_attachment_query(mol, dummies, fixed_degree=True),
        anchor=_capped(mol, text),
        template=_template(mol),
    )


def _check_attachment_points(mol: Chem.Mol, text: str) -> None:
    """One connected core, and each ``*`` bonded to exactly one core atom (a substituent's place)."""
    if len(Chem.GetMolFrags(mol)) > 1:
        raise SeqVAEError(f"scaffold {text!r} has {len(Chem.GetMolFrags(mol))} disconnected parts; give one connected scaffold")
    for atom in mol.GetAtoms():
        if atom.GetAtomicNum() != 0:
            continue
        neighbours = [n.GetAtomicNum() for n in atom.GetNeighbors()]
        if len(neighbours) != 1 or neighbours[0] == 0:
            raise SeqVAEError(
                f"scaffold {text!r}: each * must be bonded to exactly one core atom (it marks where a substituent "
                "goes), but one is bonded to " + (f"{len(neighbours)} atoms" if len(neighbours) != 1 else "another *")
            )


def _template(mol: Chem.Mol) -> tuple[str, ...]:
    """The scaffold's SMILES, started at its first core atom in canonical order and cut at each ``*``.

    Written from a core atom, every ``*`` (a leaf) is followed by ``)`` or by the end of the
    string, so a substituent written in its place ends where the decoder closes that branch, or
    ends the molecule."""
    clean = Chem.RWMol(mol)
    for atom in clean.GetAtoms():
        if atom.GetAtomicNum() == 0:
            atom.SetIsotope(0)
            atom.SetFormalCharge(0)
    ranks = list(Chem.CanonicalRankAtoms(clean))
    root = min((a.GetIdx() for a in clean.GetAtoms() if a.GetAtomicNum() != 0), key=ranks.__getitem__)
    return tuple(Chem.MolToSmiles(clean, rootedAtAtom=root).split("*"))


def _scaffold_mol(text) -> Chem.Mol:
    if not isinstance(text, str) or not text.strip():
        raise SeqVAEError(f"a scaffold is a SMILES string with * at the attachment points, got {text!r}")
    if len(text) > MAX_SMILES_CHARACTERS:
        raise SeqVAEError(f"scaffold of {len(text)} characters is too long (at most {MAX_SMILES_CHARACTERS})")
    mol = to_mol(text.strip())
    if mol is None:
        raise SeqVAEError(
            f"scaffold {text!r} is not a valid SMILES (RDKit cannot parse it); write it as SMILES with * at "
            "the attachment points, e.g. 'c1ccc(*)cc1C(=O)N*'"
        )
    return mol


def _attachment_query(mol: Chem.Mol, dummies: list[int], fixed_degree: bool) -> Chem.Mol:
    """The scaffold as a query: each ``*`` becomes "any atom but hydrogen" (a substituent must be
    there); with ``fixed_degree`` every core atom also keeps its number of neighbours."""
    parameters = Chem.AdjustQueryParameters.NoAdjustments()
    if fixed_degree:
        parameters.adjustDegree = True
        parameters.adjustDegreeFlags = Chem.ADJUST_IGNOREDUMMIES  # rings and chains alike; not the *
    query = Chem.RWMol(Chem.AdjustQueryProperties(mol, parameters))
    for index in dummies:  # not "*": in SMARTS that matches an explicit [2H] as well
        query.ReplaceAtom(index, Chem.AtomFromSmarts("[!#1]"))
    return query.GetMol()


def _capped(mol: Chem.Mol, text: str) -> str:
    capped = Chem.RWMol(mol)
    for atom in capped.GetAtoms():
        if atom.GetAtomicNum() == 0:
            atom.SetAtomicNum(6)
            atom.SetIsotope(0)  # [1*] labels from ReplaceSidechains
            atom.SetNoImplicit(False)
    try:
        Chem.SanitizeMol(capped)
    except Exception as error:  # noqa: BLE001 - RDKit raises several kinds for a bad valence
        raise SeqVAEError(f"scaffold {text!r} cannot carry a substituent at each *: {error}") from None
    return Chem.MolToSmiles(capped)


def contains_scaffold(mol: Chem.Mol | None, scaffold: Scaffold, only_at_attachments: bool = False) -> bool:
    """Whether ``mol`` holds the scaffold with a heavy atom at every attachment point."""
    if mol is None:
        return False
    return mol.HasSubstructMatch(scaffold.strict_query if only_at_attachments else scaffold.query)


@dataclass
class _Search:
    """What the walk has found so far, and what it has spent."""

    found: dict  # canonical SMILES -> (parent anchor, scale)
    draws: int = 0
    valid: int = 0
    containing: int = 0


def decorate(
    inference,
    scaffold: str,
    n: int = 100,
    condition: dict | None = None,
    seed: int | None = None,
    *,
    only_at_attachments: bool = False,
    max_draws: int | None = None,
    scale: float = 1.0,
    min_scale: float = 0.25,
    max_scale: float = 4.0,
    batch_size: int = 200,
    method: str = "constrained",
    **decode_options,
) -> pd.DataFrame:
    """Up to ``n`` distinct molecules that contain ``scaffold`` with every ``*`` filled.

    Args:
        inference: a molecule model (:class:`~seqvae.inference.SeqVAEInference`).
        scaffold: SMILES with ``*`` at the attachment points.
        condition: ``{property: target}`` for conditional models.
        only_at_attachments: substituents at the ``*`` only (the core atoms keep their degree).
        max_draws: latents decoded at most (default ``50 * n``).
        scale: the first neighbourhood, in posterior standard deviations. After a round in which
            under 20 % of the draws contain the scaffold it shrinks by 1.5 (down to ``min_scale``);
            after one in which under half of those are new molecules it grows by 1.5 (up to
            ``max_scale``).
        batch_size: latents decoded per round.
        method: ``"constrained"`` (default) forces the scaffold's SMILES tokens and samples a
            substituent at each ``*`` (SMILES models); ``"latent"`` decodes freely and keeps the
            draws that contain the scaffold (any molecule model).
        decode_options: ``temperature``, ``top_k``, ``top_p``; with ``method="latent"`` also
            ``strategy``, ``guidance_scale``... (see :func:`seqvae.generation.decode_latents`).

    Returns:
        ``smiles`` (canonical), ``parent`` (the anchor it was decoded around), ``scale``, and for a
        conditional model the measured properties with ``_target`` and ``_error``. ``attrs
        ["decoration"]`` holds ``draws``, ``valid``, ``containing``, ``found`` and ``seconds``.
    """
    _check_model(inference)
    parsed = parse_scaffold(scaffold)
    check_count("n", n)
    max_draws = check_count("max_draws", max_draws if max_draws is not None else DRAWS_PER_MOLECULE * n)
    check_count("batch_size", batch_size)
    neighbourhood = _Neighbourhood(scale, min_scale, max_scale)
    checked = check_condition(inference.config, condition)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    decode = _decoder(method, inference, parsed, inference._condition_vector(checked), generator, decode_options)

    started = time.perf_counter()
    search = _Search(found={})
    anchors = _Anchors(inference, parsed.anchor)
    while len(search.found) < n and search.draws < max_draws:
        size = min(batch_size, max_draws - search.draws)
        z, parents = anchors.draw(size, neighbourhood.scale, generator)
        containing_before = search.containing
        new = _accept(search, decode(z.to(inference.device)), parents, parsed, only_at_attachments, neighbourhood.scale, n)
        anchors.add(new)
        neighbourhood.adapt(search.containing - containing_before, len(new), size)
    return _result_frame(inference, parsed, search, checked, time.perf_counter() - started, n)


class _Neighbourhood:
    """How far from the anchors latents are drawn, in posterior standard deviations: it shrinks
    when few draws keep the scaffold (too far out) and grows when most of those that do are
    repeats (too close)."""

    def __init__(self, scale: float, low: float, high: float):
        if not all(map(is_finite_number, (low, scale, high))) or not 0 < low <= scale <= high:
            raise SeqVAEError(
                f"the scales must be finite with 0 < min_scale <= scale <= max_scale, got {low!r}, {scale!r} and {high!r}"
            )
        self.scale, self.low, self.high = float(scale), float(low), float(high)

    def adapt(self, containing: int, new: int, size: int) -> None:
        if containing < FEW_CONTAINING * size:
            self.scale = max(self.scale / SCALE_STEP, self.low)
        elif new < MOSTLY_REPEATS * containing:
            self.scale = min(self.scale * SCALE_STEP, self.high)


class _Anchors:
    """The molecules latents are drawn around: the capped scaffold, then every molecule found."""

    def __init__(self, inference, capped_scaffold: str):
        self.inference = inference
        self.smiles = [capped_scaffold]
        self.means, self.sigmas = _posterior(inference, self.smiles)

    def draw(self, size: int, scale: float, generator) -> tuple[torch.Tensor, list[str]]:
        """``z = mu + scale * sigma * eps`` around anchors picked at random, and those anchors."""
        picks = torch.randint(len(self.smiles), (size,), generator=generator)
        noise = torch.randn(size, self.means.size(1), generator=generator)
        return self.means[picks] + scale * self.sigmas[picks] * noise, [self.smiles[i] for i in picks.tolist()]

    def add(self, found: list[tuple[str, str]]) -> None:
        """``(canonical, as decoded)`` pairs: encoded as decoded, listed canonical."""
        if not found:
            return
        with _no_unknown_symbol_warnings():
            means, sigmas = _posterior(self.inference, [decoded for _, decoded in found])
        self.smiles += [smiles for smiles, _ in found]
        self.means, self.sigmas = torch.cat([self.means, means]), torch.cat([self.sigmas, sigmas])


class _ScaffoldVocabulary:
    """The model's token ids for the scaffold template and for the symbols that open, close or
    end a substituent."""

    def __init__(self, tokenizer, scaffold: Scaffold):
        vocabulary = tokenizer.get_vocab()
        self.pieces = [self._ids(piece, vocabulary, scaffold) for piece in scaffold.template]
        self.open, self.close = vocabulary.get("("), vocabulary.get(")")
        self.eos, self.pad, self.bos = tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id
        self.ring_digits = {vocabulary[t] for t in vocabulary if re.fullmatch(r"%\d\d|\d", t)}
        # a substituent starts with an atom: not a ring closure, branch, dot or end, nor a bond
        # order (the scaffold gives the bond to each *)
        starts = [vocabulary[t] for t in vocabulary if re.fullmatch(r"[().=#:$]", t)]
        self.not_first = sorted(self.ring_digits) + starts + [self.eos]
        self.never = [vocabulary[token] for token in (".",) if token in vocabulary] + [self.pad, self.bos]
        self.core_rings = self._open_core_rings()

    def _open_core_rings(self) -> list[list[int]]:
        """For each ``*``, the ring-closure digits the core has open there: a substituent that
        wrote one would bond to the core instead of opening a ring of its own."""
        open_rings, at_attachment = set(), []
        for piece in self.pieces[:-1]:
            open_rings ^= {token for token in piece if token in self.ring_digits and piece.count(token) % 2}
            at_attachment.append(sorted(open_rings))
        return at_attachment

    @staticmethod
    def _ids(piece: str, vocabulary: dict, scaffold: Scaffold) -> list[int]:
        tokens = re.findall(SMILES_REGEX, piece)
        unknown = [token for token in tokens if token not in vocabulary]
        if unknown:
            raise SeqVAEError(
                f"scaffold {scaffold.text!r}: the model's vocabulary has no {unknown[0]!r}, so constrained decoding "
                "cannot write it; use method='latent'"
            )
        return [vocabulary[token] for token in tokens]


@dataclass
class _Row:
    """Where one constrained sequence stands: in a scaffold piece (forced) or in a substituent (free)."""

    piece: int = 0  # the template piece being written, or the last one written while free
    position: int = 0  # next token of that piece
    free: bool = False
    depth: int = 0  # open branches inside the substituent
    rings: set = field(default_factory=set)  # ring-closure digits the substituent has opened
    free_tokens: int = 0
    done: bool = False


@torch.no_grad()
def _constrained_decode(
    model, z, condition, words: _ScaffoldVocabulary, generator, temperature=1.0, top_k=0, top_p=1.0
) -> list[list[int]]:
    """Decode ``z`` with the scaffold's tokens forced and a sampled substituent at each ``*``.

    A substituent written in a branch, ``c(*)``, ends when the decoder closes the branch at its
    own depth; the last one, at the end of the template, ends the molecule. Returns token ids
    (without ``<bos>``/``<eos>``); a sequence that runs out of length is returned empty.
    """
    limit = model.config.max_sequence_length - 1
    size = z.size(0)
    if condition is not None:
        condition = condition.to(z.device, z.dtype).expand(size, -1)
    rows = [_Row() for _ in range(size)]
    written = [[] for _ in range(size)]
    state = model.initial_decoder_state(z, condition)
    tokens = torch.full((size,), words.bos, dtype=torch.long, device=z.device)
    with eval_mode(model):
        for _ in range(limit):
            if all(row.done for row in rows):
                break
            adapt_threads()
            logits, state = model.decode_logits(tokens.unsqueeze(1), z, state, condition)
            logits = _masked(logits[:, -1].float(), rows, words)
            probabilities = F.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
            sampled = draw_tokens(probabilities, generator).tolist()
            chosen = [_step(row, words, token) for row, token in zip(rows, sampled)]
            for sequence, token in zip(written, chosen):
                if token is not None:
                    sequence.append(token)
            tokens = torch.tensor([words.pad if token is None else token for token in chosen], device=z.device)
    return [sequence[:-1] if row.done else [] for sequence, row in zip(written, rows)]


def _masked(logits: torch.Tensor, rows: list[_Row], words: _ScaffoldVocabulary) -> torch.Tensor:
    """Forbid, in each free row, the tokens that cannot come next in its substituent."""
    logits[:, words.never] = float("-inf")
    for index, row in enumerate(rows):
        if not row.free:
            continue
        if row.free_tokens == 0:
            logits[index, words.not_first] = float("-inf")
        logits[index, words.core_rings[row.piece]] = float("-inf")
        last = row.piece == len(words.pieces) - 2 and not words.pieces[-1]  # the template ends at this *
        if row.depth > 0 or not last or row.rings:
            logits[index, words.eos] = float("-inf")  # branches and rings close before the molecule ends
        if row.depth == 0 and (last or row.rings) and words.close is not None:
            logits[index, words.close] = float("-inf")  # no core branch left to close, or own rings open
    return logits


def _step(row: _Row, words: _ScaffoldVocabulary, sampled: int) -> int | None:
    """The token this row writes now (forced, or ``sampled`` in a substituent), moving it on to
    what it writes next; ``None`` once it is done."""
    if row.done:
        return None
    if not row.free:
        if row.piece == len(words.pieces):  # the whole template is written
            row.done = True
            return words.eos
        token = words.pieces[row.piece][row.position]
        row.position += 1
        _settle(row, words)
        return token
    row.free_tokens += 1
    if sampled in words.ring_digits:
        row.rings ^= {sampled}
    elif sampled == words.eos:
        row.done = True
    elif sampled == words.open:
        row.depth += 1
    elif sampled == words.close and row.depth > 0:
        row.depth -= 1
    elif sampled == words.close:  # closes the core's branch: the first token of the next piece
        row.free, row.piece, row.position = False, row.piece + 1, 1
        _settle(row, words)
    return sampled


def _settle(row: _Row, words: _ScaffoldVocabulary) -> None:
    """At the end of a piece: on to the substituent at the next ``*``, or to ``<eos>``."""
    if row.position < len(words.pieces[row.piece]):
        return
    if row.piece == len(words.pieces) - 1:
        row.piece += 1  # past the last piece: <eos> comes next
    else:
        row.free, row.depth, row.free_tokens, row.rings = True, 0, 0, set()


def _decoder(method: str, inference, scaffold: Scaffold, condition, generator, options: dict):
    """``z -> strings`` for the decoding ``method``: ``constrained`` writes the scaffold's tokens and
    samples the substituents; ``latent`` decodes freely (``strategy``, default ``sample``)."""
    model, tokenizer, representation = inference.model, inference.tokenizer, inference.representation
    if method == "latent":
        options = inference._decoding_options({"strategy": "sample", **options})

        def decode(z):
            ids = decode_latents(model, z, generator=generator, condition=condition, **options)
            return ids_to_strings(tokenizer, ids, representation)

        return decode
    if method != "constrained":
        raise SeqVAEError(f"method must be 'constrained' or 'latent', got {method!r}")
    if representation != "smiles":
        raise SeqVAEError(f"method='constrained' writes SMILES tokens; this model reads {representation}: use method='latent'")
    options = {name: value for name, value in options.items() if name != "syntax"}  # substituents follow their own rules
    unsupported = sorted(set(options) - {"temperature", "top_k", "top_p"})
    if unsupported:
        raise SeqVAEError(
            f"method='constrained' samples with temperature, top_k and top_p only, not {', '.join(unsupported)}; "
            "use method='latent' for those"
        )
    check_decoding_options("sample", **options)
    words = _ScaffoldVocabulary(tokenizer, scaffold)

    def decode(z):
        ids = _constrained_decode(model, z, condition, words, generator, **options)
        return ids_to_strings(tokenizer, ids, representation)

    return decode


def _check_model(inference) -> None:
    if inference.representation == "text":
        raise SeqVAEError("decorate works on molecule models; this is a text model")
    if not inference.config.latent_dim:
        raise SeqVAEError("decorate samples around the scaffold's latent: this model has none (latent_dim 0)")


@torch.no_grad()
def _posterior(inference, molecules: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and standard deviations ``[B, latent_dim]`` (on the CPU) of ``molecules``."""
    batch = inference.tokenize(molecules)
    mu, logvar = inference.model.encode(batch["input_ids"], batch["attention_mask"])
    return mu.float().cpu(), (0.5 * logvar.float()).exp().cpu()


@contextlib.contextmanager
def _no_unknown_symbol_warnings():
    """The anchors are the model's own molecules: a symbol its vocabulary lacks in their canonical
    form (a rare charge or stereo atom) is no news for the user, who gave only the scaffold."""
    inference_log = logging.getLogger("seqvae.inference")
    def quiet(record: logging.LogRecord) -> bool:
        return "not in the model's vocabulary" not in record.getMessage()

    inference_log.addFilter(quiet)
    try:
        yield
    finally:
        inference_log.removeFilter(quiet)


def _accept(search: _Search, outputs, parents, scaffold: Scaffold, only_at_attachments, scale, n) -> list[tuple[str, str]]:
    """Count the round's draws and keep the new molecules that contain the scaffold (at most up
    to ``n`` found); returns those kept, canonical and as decoded (the form to encode: RDKit's
    canonical form may write an atom the vocabulary spells otherwise)."""
    kept = []
    for output, parent in zip(outputs, parents):
        search.draws += 1
        mol = to_mol(output)
        if mol is None:
            continue
        search.valid += 1
        if not contains_scaffold(mol, scaffold, only_at_attachments):
            continue
        search.containing += 1
        smiles = Chem.MolToSmiles(mol)
        if smiles not in search.found and len(search.found) < n:
            search.found[smiles] = (parent, round(scale, 4))
            kept.append((smiles, output))
    return kept


def _result_frame(inference, scaffold: Scaffold, search: _Search, checked: dict, seconds: float, n: int) -> pd.DataFrame:
    smiles = list(search.found)
    frame = pd.DataFrame(
        {
            "smiles": smiles,
            "parent": [search.found[s][0] for s in smiles],
            "scale": [search.found[s][1] for s in smiles],
        }
    )
    if inference.config.num_properties:
        frame = pd.concat([frame, property_table(smiles, inference.config, checked)], axis=1)
    frame.attrs["decoration"] = {
        "scaffold": scaffold.text,
        "draws": search.draws,
        "valid": search.valid,
        "containing": search.containing,
        "found": len(smiles),
        "seconds": round(seconds, 3),
    }
    summary = (
        f"decorated {scaffold.text}: {len(smiles)} distinct molecules in {search.draws} draws "
        f"({search.valid / max(search.draws, 1):.0%} valid, {search.containing / max(search.draws, 1):.0%} contain the scaffold)"
    )
    if len(smiles) < n:
        logger.warning("%s; fewer than the %d asked for: raise max_draws, or scale for a wider search", summary, n)
    else:
        logger.info(summary)
    return frame

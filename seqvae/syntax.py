"""SMILES grammar while decoding: only tokens that can still lead to a SMILES that RDKit reads.

A SMILES decoder writes one token at a time and, from latents away from the training
molecules, often writes a string that no parser accepts (a ``)`` without its ``(``, a ring bond
never closed, an end inside a branch) or an atom with more bonds than its element takes: 62%
of the shipped ZINC250k model's invalid prior samples fail in these ways.
:class:`SmilesSyntax` follows each sequence as it is written, and :meth:`SyntaxState.restrict`
removes the tokens that would break the grammar or overfill an atom, as SD-VAE's syntax- and
semantics-directed decoding does (Dai et al. 2018).

What is followed, per sequence: the kind of the last token, the branch depth and the atom each
open branch hangs from, the open ring labels and the atom and bond order of each, the atom the
next bond attaches to and its parent, and the valence each atom has left. Valence is counted
with aromatic bonds as 1 and each element at the largest valence RDKit allows it (for a
charged atom, also that of the element with as many electrons): the count never exceeds the
real one, so no token of a SMILES that RDKit reads is refused (tested on 670,000 ZINC and
MOSES SMILES, canonical, random and Kekule forms). One exception by design: while a ring is
open, the chain's last atom keeps a free bond, which refuses rings bonded across a '.'
("C1CF.C1"). A sequence the rules cannot complete (a full atom with a ring open and no '.' in
the vocabulary) may only end. Aromaticity (whether a ring can be kekulized) is not checked:
RDKit still judges validity.

The state is a small integer table on the CPU, one row per sequence, read and written by two
compiled loops (numba) once per decoding step: a few dozen tensor operations per step would
cost more than the decoder's own step on a CPU.
"""

from __future__ import annotations

import functools
import re

import numba
import numpy as np
import torch
from rdkit import Chem

from .tokenization import SMILES_REGEX

__all__ = ["SmilesSyntax", "SyntaxState"]

# token kinds; START is the kind "before the first token", BRANCH_BOND that of a bond right
# after '(' (an atom must follow it, not a ring label)
START, ATOM, BOND, OPEN, CLOSE, RING, DOT, END, OTHER, BRANCH_BOND = range(10)
ORGANIC_ATOMS = {"B", "C", "N", "O", "P", "S", "F", "Cl", "Br", "I", "b", "c", "n", "o", "s", "p", "*"}
BOND_ORDERS = {"-": 1, "=": 2, "#": 3, "$": 4, ":": 1, "/": 1, "\\": 1}
RING_LABEL = re.compile(r"[0-9]|%[0-9]{2}")
BRACKET_ATOM = re.compile(
    r"\[\d*(?P<element>[A-Z][a-z]?|[a-z][a-z]?|\*)(?:@(?:@|TH[12]|AL[12]|SP[123]|TB\d\d?|OH\d\d?)?)?"
    r"(?:H(?P<hydrogens>\d*))?(?P<charge>[+-]+\d*)?(?::\d+)?\]"
)
UNLIMITED = 99  # the valence of '*' and of elements RDKit does not limit

# what may follow each kind, before the state's own conditions (depth, open rings) apply;
# a ring bond after ')' is accepted by RDKit, a '.' right after '(' is not
FOLLOWERS = {
    START: {ATOM},
    ATOM: {ATOM, BOND, OPEN, CLOSE, RING, DOT, END},
    RING: {ATOM, BOND, OPEN, CLOSE, RING, DOT, END},
    CLOSE: {ATOM, BOND, OPEN, CLOSE, RING, DOT, END},
    OPEN: {ATOM, BOND},
    BOND: {ATOM, RING},
    DOT: {ATOM},
    END: set(),
    OTHER: set(),
    BRANCH_BOND: {ATOM},
}


def token_kind(token: str) -> int:
    if token in ORGANIC_ATOMS or (token.startswith("[") and token.endswith("]") and len(token) > 2):
        return ATOM
    if token in BOND_ORDERS:
        return BOND
    if RING_LABEL.fullmatch(token):
        return RING
    return {"(": OPEN, ")": CLOSE, ".": DOT}.get(token, OTHER)


@functools.cache
def _largest_valence(atomic_number: int) -> int:
    valences = list(Chem.GetPeriodicTable().GetValenceList(atomic_number))
    return UNLIMITED if -1 in valences or not valences else max(valences)


def atom_capacity(token: str) -> int:
    """The most bonds (aromatic ones counted as 1) an atom token can carry: the largest valence
    of its element, or of the element with as many electrons when it is charged, less its
    explicit hydrogens. Generous where unsure: it must never refuse a real molecule."""
    if token == "*":
        return UNLIMITED
    if token in ORGANIC_ATOMS:
        return _largest_valence(Chem.GetPeriodicTable().GetAtomicNumber(token.capitalize()))
    match = BRACKET_ATOM.fullmatch(token)
    if match is None or match["element"] == "*":
        return UNLIMITED
    try:
        number = Chem.GetPeriodicTable().GetAtomicNumber(match["element"].capitalize())
    except RuntimeError:  # not an element RDKit knows: it will judge the molecule
        return UNLIMITED
    sign = match["charge"] or ""
    charge = (int(sign.lstrip("+-")) if sign.lstrip("+-") else len(sign)) * (-1 if sign.startswith("-") else 1)
    largest = _largest_valence(number)
    if charge and 0 < number - charge <= 118:
        largest = max(largest, _largest_valence(number - charge))
    hydrogens = 0 if match["hydrogens"] is None else int(match["hydrogens"] or 1)
    return max(largest - hydrogens, 0)


class SmilesSyntax:
    """The grammar's tables for one vocabulary; :meth:`start` gives the per-sequence state."""

    def __init__(self, vocabulary: dict[str, int], eos_token_id: int):
        size = max(vocabulary.values()) + 1
        self.kinds = np.full(size, OTHER, dtype=np.int64)
        self.capacity = np.zeros(size, dtype=np.int64)  # atoms: the bonds they take
        self.bond_order = np.ones(size, dtype=np.int64)  # bond symbols: their order
        for token, index in vocabulary.items():
            self.kinds[index] = token_kind(token)
            if self.kinds[index] == ATOM:
                self.capacity[index] = atom_capacity(token)
            self.bond_order[index] = BOND_ORDERS.get(token, 1)
        self.kinds[eos_token_id] = END
        self.eos_token_id = eos_token_id
        ring_ids = np.flatnonzero(self.kinds == RING)
        self.labels = len(ring_ids)
        self.ring_slot = np.full(size, -1, dtype=np.int64)  # a ring token's label column
        self.ring_slot[ring_ids] = np.arange(self.labels)
        self.followers = self._followers_by_code(self.kinds)
        # the state table's blocks: see the column names below the class
        self.rings_from = STACK_FROM + TRACKED_DEPTH
        self.orders_from = self.rings_from + self.labels
        self.free_from = self.orders_from + self.labels

    @staticmethod
    def _followers_by_code(kinds: np.ndarray) -> np.ndarray:
        """``[40, vocabulary]``: the tokens the grammar lets follow each (last kind, inside a
        branch, a ring open) combination, before valence and ring labels are checked."""
        rows = []
        for last in range(len(FOLLOWERS)):
            for in_branch in (False, True):
                for ring_open in (False, True):
                    follows = set(FOLLOWERS[last])
                    if not in_branch:
                        follows.discard(CLOSE)
                    if in_branch or ring_open:
                        follows.discard(END)
                    rows.append(np.isin(kinds, sorted(follows)))
        return np.stack(rows)

    @classmethod
    def for_tokenizer(cls, tokenizer) -> SmilesSyntax | None:
        """The grammar for a SMILES tokenizer whose tokens are single SMILES symbols (seqvae's
        regex tokenizer); ``None`` for vocabularies of merged pieces (BPE), where one token can
        hold several symbols and these rules do not apply. A symbol that SMILES only allows
        inside brackets (a stray ``+``) is never written."""
        vocabulary = tokenizer.get_vocab()
        special = set(tokenizer.all_special_tokens)
        symbols = [token for token in vocabulary if token not in special]
        merged = any(len(re.findall(SMILES_REGEX, token)) != 1 for token in symbols)
        if merged or tokenizer.eos_token_id is None or ATOM not in map(token_kind, symbols):
            return None
        return cls(vocabulary, tokenizer.eos_token_id)

    def cover(self, size: int) -> None:
        """Extend the tables to ``size`` tokens when the model's output is wider than the
        vocabulary (padded embeddings): the extra ids are never written."""
        extra = size - len(self.kinds)
        if extra <= 0:
            return
        self.kinds = np.concatenate([self.kinds, np.full(extra, OTHER, dtype=np.int64)])
        self.capacity = np.concatenate([self.capacity, np.zeros(extra, dtype=np.int64)])
        self.bond_order = np.concatenate([self.bond_order, np.ones(extra, dtype=np.int64)])
        self.ring_slot = np.concatenate([self.ring_slot, np.full(extra, -1, dtype=np.int64)])
        self.followers = self._followers_by_code(self.kinds)

    def start(self, rows: int, device: torch.device | str) -> SyntaxState:
        """The state of ``rows`` sequences that have written nothing yet; masks go to ``device``."""
        table = np.zeros((rows, self.free_from + TRACKED_ATOMS), dtype=np.int64)
        table[:, LAST], table[:, PENDING] = START, 1
        table[:, [ATTACH, PARENT, PARTNER]] = NO_ATOM
        table[:, self.rings_from : self.orders_from] = CLOSED
        return SyntaxState(self, table, torch.device(device))


# The columns of a SyntaxState's table. ATTACH is the atom that a ring label or the next atom
# bonds to, PARENT the atom that ATTACH is bonded to by the chain (when known), PARTNER the atom
# its last ring closure bonded it to, PENDING the order of the next bond. From STACK_FROM on:
# the ATTACH atom of each open branch (to return to when it closes). Then blocks that start
# where the vocabulary puts them (SmilesSyntax's rings_from, orders_from, free_from): for each
# ring label, the atom that opened it and the bond order; for each atom, the valence it has left.
LAST, DEPTH, ATOMS, ATTACH, PARENT, PARTNER, PENDING, STACK_FROM = range(8)
TRACKED_DEPTH = 16  # deeper branches are followed without the duplicate-bond and valence checks
TRACKED_ATOMS = 64  # atoms beyond are followed without the valence check
NO_ATOM, CLOSED = -2, -1
EOS_MARGIN = 7.0  # nats: below this under the best token, <eos> holds under 0.1% of the mass


class SyntaxState:
    """One row per sequence in one table on the CPU, so that rows leave and join in one step."""

    def __init__(self, syntax: SmilesSyntax, table: np.ndarray, device: torch.device):
        self.syntax = syntax
        self.table = table
        self.device = device

    def _masks(self) -> tuple[np.ndarray, np.ndarray]:
        """``[rows, vocabulary]`` each: the tokens that keep each sequence on its way to a
        valid SMILES, and among them those that close an open branch or ring."""
        syntax = self.syntax
        rows, size = self.table.shape[0], len(syntax.kinds)
        allowed, closers = np.empty((rows, size), dtype=np.bool_), np.empty((rows, size), dtype=np.bool_)
        _fill_masks(
            self.table, syntax.followers, syntax.kinds, syntax.capacity, syntax.bond_order, syntax.ring_slot,
            syntax.rings_from, syntax.orders_from, syntax.free_from, syntax.eos_token_id, allowed, closers,
        )
        return allowed, closers

    def allowed(self) -> torch.Tensor:
        """``[rows, vocabulary]``: which tokens keep each sequence on its way to a valid SMILES."""
        return torch.from_numpy(self._masks()[0]).to(self.device)

    def restrict(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` with the tokens that lead to no valid SMILES at ``-inf``.

        Where ``<eos>`` must wait for an open branch or ring, its probability goes to the tokens
        that close them (in proportion to theirs): a decoder that means to stop closes what it
        opened instead of writing on. Rows where ``<eos>`` is negligible (``EOS_MARGIN`` nats
        below the best token) skip this. Only refused tokens lose probability, so a valid SMILES
        never becomes less likely when sampling at temperature 1 without top-k / top-p; greedy
        decoding can pick a closing token where ``<eos>`` was likelier than the decoder's next
        choice, and beam scores include the raise.
        """
        self.syntax.cover(logits.size(-1))
        allowed, closers = self._masks()
        values = logits.detach().float().cpu().numpy().copy()
        _restrict_rows(values, allowed, closers, self.syntax.eos_token_id, EOS_MARGIN)
        return torch.from_numpy(values).to(logits.device)

    def advance(self, tokens: torch.Tensor) -> None:
        """Record the tokens just written (one per row)."""
        syntax = self.syntax
        _advance_rows(
            self.table, tokens.cpu().numpy().astype(np.int64, copy=False), syntax.kinds, syntax.capacity,
            syntax.bond_order, syntax.ring_slot, syntax.rings_from, syntax.orders_from, syntax.free_from,
        )

    def select(self, rows: torch.Tensor) -> SyntaxState:
        """The state of ``rows`` (in that order): finished rows leaving, beams reordered."""
        return SyntaxState(self.syntax, self.table[rows.cpu().numpy()], self.device)

    def join(self, other: SyntaxState) -> SyntaxState:
        """This state with ``other``'s rows appended (new sequences taking free places)."""
        return SyntaxState(self.syntax, np.concatenate([self.table, other.table]), self.device)


# --- the per-row rules, compiled


@numba.njit(cache=True)
def _free(table, row, atom, free_from):
    """The valence ``atom`` has left (unlimited for no atom, or one beyond the tracked ones)."""
    if atom < 0 or atom >= TRACKED_ATOMS:
        return UNLIMITED
    return table[row, free_from + atom]


@numba.njit(cache=True)
def _fill_masks(table, followers, kinds, capacity, bond_order, ring_slot, rings_from, orders_from, free_from, eos, allowed, closers):
    for row in range(table.shape[0]):
        depth, attach, pending = table[row, DEPTH], table[row, ATTACH], table[row, PENDING]
        open_rings = 0
        for label in range(rings_from, orders_from):
            open_rings += table[row, label] != CLOSED
        code = table[row, LAST] * 4 + (2 if depth > 0 else 0) + (1 if open_rings > 0 else 0)
        free = _free(table, row, attach, free_from)
        need = pending if attach >= 0 else 0  # a first atom, or one after '.', bonds to nothing
        at_top = depth == 0  # there, while a ring is open, the chain's last atom must keep a bond
        possible = False
        for token in range(kinds.shape[0]):
            ok, closes, kind = followers[code, token], False, kinds[token]
            if ok and kind == ATOM:
                ok = free >= need and capacity[token] >= need + (1 if at_top and open_rings > 0 else 0)
            elif ok and kind == BOND:
                ok = bond_order[token] <= free
            elif ok and kind == OPEN:
                ok = free >= 1
            elif ok and kind == CLOSE:
                closes = True
            elif ok and kind == RING:
                label = ring_slot[token]
                opened_at = table[row, rings_from + label]
                if opened_at != CLOSED:  # closing: the larger of the two orders, not on a bonded atom
                    order = max(table[row, orders_from + label], pending)
                    rings_after = open_rings - 1
                    bonded = opened_at >= 0 and (  # an atom not followed (past TRACKED_DEPTH) bonds to nothing known
                        opened_at == attach or opened_at == table[row, PARENT] or opened_at == table[row, PARTNER]
                    )
                    ok = not bonded and order + (1 if at_top and rings_after > 0 else 0) <= free
                    closes = True
                else:
                    ok = pending + (1 if at_top else 0) <= free
            allowed[row, token] = ok
            closers[row, token] = ok and closes
            possible = possible or ok
        if not possible:  # the rules cannot complete this sequence (a full atom, a ring open): it ends
            allowed[row, eos] = True


@numba.njit(cache=True)
def _restrict_rows(logits, allowed, closers, eos, margin):
    """In place: refused tokens to -inf; where <eos> is refused but not negligible, the closing
    tokens' logits raised so that they share its probability in proportion to theirs."""
    for row in range(logits.shape[0]):
        top = logits[row].max()
        if not allowed[row, eos] and logits[row, eos] > top - margin:
            closing = 0.0  # the closers' probability, up to the row's normalisation (as is <eos>'s below)
            for token in range(logits.shape[1]):
                if closers[row, token]:
                    closing += np.exp(logits[row, token] - top)
            if closing > 0.0:  # p(t) becomes p(t) * (1 + p(eos) / p(closers)) for each closer t
                lift = np.log1p(np.exp(logits[row, eos] - top) / closing)
                for token in range(logits.shape[1]):
                    if closers[row, token]:
                        logits[row, token] += lift
        for token in range(logits.shape[1]):
            if not allowed[row, token]:
                logits[row, token] = -np.inf


@numba.njit(cache=True)
def _advance_rows(table, tokens, kinds, capacity, bond_order, ring_slot, rings_from, orders_from, free_from):
    for row in range(table.shape[0]):
        token = tokens[row]
        kind, attach, pending = kinds[token], table[row, ATTACH], table[row, PENDING]
        if kind == OPEN:  # the branch hangs from ATTACH
            depth = table[row, DEPTH]
            if depth < TRACKED_DEPTH:
                table[row, STACK_FROM + depth] = attach
            table[row, DEPTH] = depth + 1
        elif kind == CLOSE:  # back to the atom the branch hangs from
            depth = table[row, DEPTH] - 1
            table[row, ATTACH] = table[row, STACK_FROM + depth] if 0 <= depth < TRACKED_DEPTH else NO_ATOM
            table[row, PARENT] = NO_ATOM  # not tracked for the atom a branch returns to
            table[row, DEPTH] = depth
        elif kind == ATOM:  # bonded to ATTACH with the pending order; the next bonds go to it
            atom = table[row, ATOMS]
            bond = pending if attach >= 0 else 0
            if 0 <= attach < TRACKED_ATOMS:
                table[row, free_from + attach] -= bond
            if atom < TRACKED_ATOMS:
                table[row, free_from + atom] = capacity[token] - bond
            table[row, PARENT], table[row, ATTACH], table[row, ATOMS] = attach, atom, atom + 1
        elif kind == RING:  # opens on ATTACH, or closes there with the larger of the two orders
            label = ring_slot[token]
            opened_at = table[row, rings_from + label]
            if opened_at != CLOSED:
                order = max(table[row, orders_from + label], pending)
                table[row, PARTNER], table[row, rings_from + label] = opened_at, CLOSED
            else:
                order = pending
                table[row, rings_from + label] = attach
            table[row, orders_from + label] = order
            if 0 <= attach < TRACKED_ATOMS:
                table[row, free_from + attach] -= order
        elif kind == DOT:  # nothing to bond to
            table[row, ATTACH] = NO_ATOM
        if kind != RING or table[row, rings_from + ring_slot[token]] != CLOSED:
            table[row, PARTNER] = NO_ATOM  # only a closure just written is remembered
        table[row, PENDING] = bond_order[token] if kind == BOND else 1
        table[row, LAST] = BRANCH_BOND if kind == BOND and table[row, LAST] == OPEN else kind

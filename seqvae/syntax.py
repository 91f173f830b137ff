"""SMILES grammar while decoding: only tokens that can still lead to a SMILES that RDKit reads.

A SMILES decoder writes one token at a time and, from latents away from the training
molecules, often writes a string that no parser accepts (a ``)`` without its ``(``, a ring bond
never closed, an end inside a branch), an atom with more bonds than its element takes, or
aromatic rings that have no Kekule form (five carbons in a ring, pyrrole's nitrogen without its
hydrogen): nearly all of the shipped ZINC250k model's invalid prior samples fail in these ways.
:class:`SmilesSyntax` follows each sequence as it is written, and :meth:`SyntaxState.restrict`
removes the tokens that would break the grammar, overfill an atom or leave aromatic atoms that
cannot be kekulized, as SD-VAE's syntax- and semantics-directed decoding does (Dai et al. 2018).

What is followed, per sequence: the kind of the last token, the branch depth and the atom each
open branch hangs from, the open ring labels and the atom and bond order of each, the atom the
next bond attaches to, and for each atom the valence it has left, its aromatic class and the
atom it hangs from. Valence is counted with aromatic bonds as 1 and each element at the largest
valence RDKit allows it (a charged atom as described in :func:`atom_capacity`).

Kekulization: every sealed aromatic atom that needs a double bond (a 'c', 'n', 'o', [n+] or
[o+] with valence left and no explicit double bond; :func:`aromatic_class`) must be paired with a
neighbour over an aromatic ring bond. Atoms that later tokens can still bond to (the chain's end
and the atoms open branches hang from, while they have room; ring openers) may take a double
bond or not, and chain bonds count as ring bonds while a ring closure can still span them; a
token is refused when no pairing exists after it (a small matching search).

The rules never refuse a SMILES that RDKit reads: tested on 670,000 ZINC and MOSES SMILES,
canonical, random and Kekule forms. One exception by design: while a ring is open, the chain
keeps a free bond to go on from (on its last atom, or on an atom an open branch hangs from),
which refuses rings bonded across a '.' ("C1CF.C1"); where a ring does span a '.',
kekulization is not checked for that sequence. A sequence the grammar cannot complete (a full
atom with a ring open and no '.' in the vocabulary) may only end; one whose aromatic atoms can
no longer be kekulized goes on under the grammar alone, so that every string that ends still
parses. Given the generation limit (:meth:`SmilesSyntax.start`), a sequence near it may only
write tokens after which its branches and rings can still be closed in time, so that a string
the limit cuts parses too (nearly always: the count of tokens an ending needs is rough).

The state is a small integer table on the CPU, one row per sequence, read and written by
compiled loops (numba) once per decoding step: a few dozen tensor operations per step would
cost more than the decoder's own step on a CPU.
"""

from __future__ import annotations

import functools
import re
import threading

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
NOT_AROMATIC, STRICT, LOOSE, NEVER = range(4)  # aromatic classes of atoms (aromatic_class)

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


def aromatic_class(token: str) -> int:
    """How an aromatic atom takes part in the Kekule form. STRICT: it has a double bond in its
    ring whenever its valence leaves room for one, its valence being the one counted here (c, n,
    o, and [n+], [o+] as their isoelectronic c and n; [nH] and [nH+] count their hydrogen).
    NEVER: it has none (s, [n-]). LOOSE: either, as far as these rules know (the rarer aromatic
    atoms, whose counted valence exceeds the one RDKit gives them in a ring, and '*', which RDKit
    lets stand for any of them). NOT_AROMATIC: an aliphatic atom."""
    if token == "*":
        return LOOSE
    if token in ORGANIC_ATOMS:
        element, charge = token, ""
    else:
        match = BRACKET_ATOM.fullmatch(token)
        if match is None:
            return NOT_AROMATIC
        element, charge = match["element"], match["charge"] or ""
    if element == "*":
        return LOOSE
    if not element[:1].islower():
        return NOT_AROMATIC
    if (element, charge) in {("c", ""), ("n", ""), ("o", ""), ("n", "+"), ("o", "+")}:
        return STRICT
    if (element, charge) in {("s", ""), ("n", "-")}:
        return NEVER
    return LOOSE


def atom_capacity(token: str) -> int:
    """The most bonds (aromatic ones counted as 1) an atom token can carry: the largest valence
    of its element, less its explicit hydrogens. A charged atom of the second row (B to F) takes
    the valence of the element with as many electrons ([O-] one bond, [N+] four); a heavier one
    the larger of the two. Generous where unsure: it must never refuse a real molecule."""
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
    if charge and number <= 10 and 0 < number - charge <= 10:  # B to F: exactly as the element with as many electrons
        largest = _largest_valence(number - charge)
    elif charge and 0 < number - charge <= 118:  # heavier atoms: the larger of the two
        largest = max(largest, _largest_valence(number - charge))
    hydrogens = 0 if match["hydrogens"] is None else int(match["hydrogens"] or 1)
    return max(largest - hydrogens, 0)


class SmilesSyntax:
    """The grammar's tables for one vocabulary; :meth:`start` gives the per-sequence state."""

    def __init__(self, vocabulary: dict[str, int], eos_token_id: int):
        self.eos_token_id = eos_token_id
        self._fill_token_tables(vocabulary, max(vocabulary.values()) + 1)
        # where each block of the state table starts (see the column names below the class)
        blocks = [TRACKED_DEPTH, self.labels, self.labels, self.labels, TRACKED_ATOMS, TRACKED_ATOMS,
                  TRACKED_ATOMS, TRACKED_ATOMS, 2 * TRACKED_CLOSURES]
        starts = STACK_FROM + np.cumsum([0, *blocks])
        self.layout = np.array([*starts[1:-1], self.labels], dtype=np.int64)
        self.width = int(starts[-1])

    def _fill_token_tables(self, vocabulary: dict[str, int], size: int) -> None:
        self.kinds = np.full(size, OTHER, dtype=np.int64)
        self.capacity = np.zeros(size, dtype=np.int64)  # atoms: the bonds they take
        self.aromatic = np.zeros(size, dtype=np.int64)  # atoms: NOT_AROMATIC, STRICT, LOOSE or NEVER
        self.bond_order = np.ones(size, dtype=np.int64)  # bond symbols: their order
        self.bond_aromatic = np.ones(size, dtype=np.int64)  # 0 for a bond symbol that is not ':'
        for token, index in vocabulary.items():
            self.kinds[index] = token_kind(token)
            if self.kinds[index] == ATOM:
                self.capacity[index] = atom_capacity(token)
                self.aromatic[index] = aromatic_class(token)
            self.bond_order[index] = BOND_ORDERS.get(token, 1)
            self.bond_aromatic[index] = token == ":" or token not in BOND_ORDERS
        self.kinds[self.eos_token_id] = END
        ring_ids = np.flatnonzero(self.kinds == RING)
        self.labels = len(ring_ids)
        self.ring_slot = np.full(size, -1, dtype=np.int64)  # a ring token's label column
        self.ring_slot[ring_ids] = np.arange(self.labels)
        self.followers = self._followers_by_code(self.kinds)
        self._fill_kekule_checks()

    def _fill_kekule_checks(self) -> None:
        """Which kekulization check each token shares with others (``check_of``) and one token
        that stands for each check (``stand_in``): atoms by whether they may take an aromatic
        double bond and by the bonds they take (whether a new atom has room for more), bonds by
        order, each ring label on its own when it closes (one shared check when it opens, chosen
        per row)."""
        kinds = self.kinds
        check_of = np.full(len(kinds), -1, dtype=np.int64)
        may_double = (self.aromatic == STRICT) | (self.aromatic == LOOSE)  # an atom that never does counts as aliphatic
        rooms = np.minimum(self.capacity, ROOMS - 1)
        check_of[(kinds == ATOM) & may_double] = CHECK_AROMATIC_ATOMS + rooms[(kinds == ATOM) & may_double]
        check_of[(kinds == ATOM) & ~may_double] = CHECK_OTHER_ATOMS + rooms[(kinds == ATOM) & ~may_double]
        check_of[kinds == CLOSE] = CHECK_BRANCH_END
        check_of[kinds == DOT] = CHECK_DOT
        check_of[kinds == END] = CHECK_END
        check_of[kinds == OPEN] = CHECK_BRANCH_START
        bonds = kinds == BOND
        order = self.bond_order[bonds]
        check_of[bonds] = np.where(self.bond_aromatic[bonds] == 1, CHECK_AROMATIC_BOND,
                                   np.where(order == 1, CHECK_SINGLE_BOND, CHECK_AROMATIC_BOND + order - 1))
        check_of[kinds == RING] = CHECK_RING_CLOSURES + self.ring_slot[kinds == RING]
        self.check_of = check_of
        self.stand_in = np.full(CHECK_RING_CLOSURES + self.labels, -1, dtype=np.int64)
        for token in range(len(kinds) - 1, -1, -1):
            if check_of[token] >= 0:
                self.stand_in[check_of[token]] = token

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
        for name, fill in (("kinds", OTHER), ("capacity", 0), ("aromatic", 0), ("bond_order", 1),
                           ("bond_aromatic", 1), ("ring_slot", -1)):
            setattr(self, name, np.concatenate([getattr(self, name), np.full(extra, fill, dtype=np.int64)]))
        self.followers = self._followers_by_code(self.kinds)
        self._fill_kekule_checks()

    def start(self, rows: int, device: torch.device | str, limit: int | None = None) -> SyntaxState:
        """The state of ``rows`` sequences that have written nothing yet; masks go to ``device``.
        With ``limit`` (the tokens each may write, ``<eos>`` included), a sequence near it may
        only write what closes its branches and rings in time, instead of being cut unparsable."""
        table = np.zeros((rows, self.width), dtype=np.int64)
        table[:, LAST], table[:, PENDING], table[:, PENDING_AROMATIC] = START, 1, 1
        table[:, LEFT] = NO_LIMIT if limit is None else limit
        table[:, [ATTACH, PARENT, PARTNER]] = NO_ATOM
        rings, orders = self.layout[RINGS_AT], self.layout[ORDERS_AT]
        table[:, rings:orders] = CLOSED
        return SyntaxState(self, table, torch.device(device))

    def _tables(self) -> tuple:
        """The token tables and the layout, in the order the compiled loops take them."""
        return (self.kinds, self.capacity, self.aromatic, self.bond_order, self.bond_aromatic, self.ring_slot, self.layout)


# The columns of a SyntaxState's table. ATTACH is the atom that a ring label or the next atom
# bonds to, PARENT the atom that ATTACH is bonded to by the chain (when known), PARTNER the atom
# its last ring closure bonded it to, PENDING the order of the next bond and PENDING_AROMATIC
# whether it may be aromatic (no symbol, or ':'). UNCHECKED: once the row goes past what the
# tables follow (more atoms, branches or aromatic ring closures, or a ring open across a '.'),
# kekulization is no longer checked for it. CLOSURES: how many aromatic ring closures the last
# block holds (PARENT is the chain's own record, kept for atoms past TRACKED_ATOMS; the parents
# block below holds it for every followed atom). LEFT: the tokens the row may still write
# before the generation limit cuts it (NO_LIMIT without one). From STACK_FROM on: the ATTACH
# atom of each open branch (to return to when it closes). Then blocks that start where
# SmilesSyntax.layout puts them: for each ring label, the atom that opened it, the bond order and
# whether the bond may be aromatic; for each atom, the valence it has left, its aromatic class,
# the atom it hangs from in the chain and that chain bond's kind (CHAIN_*); the aromatic ring
# closures as pairs of atoms.
LAST, DEPTH, ATOMS, ATTACH, PARENT, PARTNER, PENDING, PENDING_AROMATIC, UNCHECKED, CLOSURES, LEFT, STACK_FROM = range(12)
RINGS_AT, ORDERS_AT, RING_AROMATIC_AT, FREE_AT, CLASS_AT, PARENTS_AT, CHAIN_AT, CLOSURES_AT, LABEL_COUNT = range(9)
TRACKED_DEPTH = 16  # deeper branches: no duplicate-bond and valence checks there, no kekulization checks after
TRACKED_ATOMS = 128  # a whole sequence at the default limit (128 tokens); atoms beyond: no valence or kekulization checks
TRACKED_CLOSURES = 24  # aromatic ring closures
NO_ATOM, CLOSED = -2, -1
NO_LIMIT = 1 << 40
RING_ENDING = 3  # tokens counted to close an open ring near the generation limit (_finish_in_time; >= 2,
# so that opening a ring is the costliest token and _fill_masks' trigger is exact)
EOS_MARGIN = 7.0  # nats: below this under the best token, <eos> holds under 0.1% of the mass
CHAIN_NONE, CHAIN_AROMATIC, CHAIN_IN_RING = 0, 1, 2  # a chain bond that is not aromatic, may be, is in a ring
# the kekulization checks tokens share: bonds by order (single, then ':', then '=', '#', '$'),
# atoms by the bonds they take (up to ROOMS - 1) among those that may take an aromatic double
# bond (CHECK_AROMATIC_ATOMS + bonds) and the others (CHECK_OTHER_ATOMS + bonds), ring labels
# closing (CHECK_RING_CLOSURES + label)
CHECK_BRANCH_END, CHECK_DOT, CHECK_END, CHECK_BRANCH_START, CHECK_SINGLE_BOND, CHECK_AROMATIC_BOND = range(6)
ROOMS = 8
CHECK_AROMATIC_ATOMS = CHECK_AROMATIC_BOND + 4  # after the double, triple and quadruple bonds
CHECK_OTHER_ATOMS = CHECK_AROMATIC_ATOMS + ROOMS
CHECK_RING_CLOSURES = CHECK_OTHER_ATOMS + ROOMS
KEKULE_BUDGET = 2000  # branches of the matching search before a row is let through unchecked
KEKULE_MARGIN = 12.0  # nats: a token this far below one kept has under 1 / 160,000 of its probability


# One parallel mask computation at a time: without a system OpenMP, numba's threading layer
# aborts the process when two threads launch parallel work at once (this lock covers the
# grammar only, not other numba kernels launched beside it).
_ROWS_IN_PARALLEL = threading.Lock()


class SyntaxState:
    """One row per sequence in one table on the CPU, so that rows leave and join in one step."""

    def __init__(self, syntax: SmilesSyntax, table: np.ndarray, device: torch.device):
        self.syntax = syntax
        self.table = table
        self.device = device

    def _masks(self, logits: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``[rows, vocabulary]`` each: the tokens that keep each sequence on its way to a
        valid SMILES, and among them those that close an open branch or ring. Given the decoder's
        ``logits``, kekulization is checked only for tokens within ``KEKULE_MARGIN`` nats of the
        likeliest allowed one (the others are too unlikely to be drawn for the check to pay)."""
        syntax = self.syntax
        rows, size = self.table.shape[0], len(syntax.kinds)
        allowed, closers = np.empty((rows, size), dtype=np.bool_), np.empty((rows, size), dtype=np.bool_)
        margin = np.inf if logits is None else KEKULE_MARGIN
        if logits is None:
            logits = np.zeros((rows, size), dtype=np.float32)
        elif logits.shape[1] < size:  # a model narrower than the vocabulary never writes the ids past it
            logits = np.pad(logits, ((0, 0), (0, size - logits.shape[1])), constant_values=-np.inf)
        with _ROWS_IN_PARALLEL:
            # as many threads as torch has now (seqvae.threads gives up cores that others use);
            # the caller's own numba setting is restored after
            previous = numba.get_num_threads()
            numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
            try:
                _fill_masks(self.table, syntax.followers, syntax.check_of, syntax.stand_in, syntax.eos_token_id,
                            *syntax._tables(), logits, margin, allowed, closers)
            finally:
                numba.set_num_threads(previous)
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
        choice, and beam scores include the raise. Kekulization is checked down to
        ``KEKULE_MARGIN`` nats below the likeliest token kept; tokens further down stay as the
        grammar left them (each is drawn less than once in 100,000 steps); tokens that close a
        branch or ring are always checked (they may take ``<eos>``'s probability).
        """
        self.syntax.cover(logits.size(-1))
        values = logits.detach().float().cpu().numpy().copy()
        allowed, closers = self._masks(values)
        _restrict_rows(values, allowed, closers, self.syntax.eos_token_id, EOS_MARGIN)
        return torch.from_numpy(values).to(logits.device)

    def advance(self, tokens: torch.Tensor) -> None:
        """Record the tokens just written (one per row)."""
        _advance_rows(self.table, tokens.cpu().numpy().astype(np.int64, copy=False), *self.syntax._tables())

    def select(self, rows: torch.Tensor) -> SyntaxState:
        """The state of ``rows`` (in that order): finished rows leaving, beams reordered."""
        return SyntaxState(self.syntax, self.table[rows.cpu().numpy()], self.device)

    def join(self, other: SyntaxState) -> SyntaxState:
        """This state with ``other``'s rows appended (new sequences taking free places)."""
        return SyntaxState(self.syntax, np.concatenate([self.table, other.table]), self.device)


# --- the per-row rules, compiled


@numba.njit(cache=True)
def _free(state, atom, layout):
    """The valence ``atom`` has left (unlimited for no atom, or one beyond the tracked ones)."""
    if atom < 0 or atom >= TRACKED_ATOMS:
        return UNLIMITED
    return state[layout[FREE_AT] + atom]


@numba.njit(cache=True, parallel=True)
def _fill_masks(table, followers, check_of, stand_in, eos, kinds, capacity, aromatic, bond_order, bond_aromatic,
                ring_slot, layout, logits, margin, allowed, closers):
    for row in numba.prange(table.shape[0]):  # rows are independent: each writes only its own masks
        _fill_row(table[row], followers, check_of, stand_in, eos, kinds, capacity, aromatic, bond_order, bond_aromatic,
                  ring_slot, layout, logits[row], margin, allowed[row], closers[row])


@numba.njit(cache=True)
def _fill_row(state, followers, check_of, stand_in, eos, kinds, capacity, aromatic, bond_order, bond_aromatic,
              ring_slot, layout, logits, margin, allowed, closers):
    """One row of :func:`_fill_masks`: the tokens that may follow ``state``, and the closers."""
    rings_from, orders_from = layout[RINGS_AT], layout[ORDERS_AT]
    depth, attach, pending = state[DEPTH], state[ATTACH], state[PENDING]
    open_rings = _open_rings(state, layout)
    code = state[LAST] * 4 + (2 if depth > 0 else 0) + (1 if open_rings > 0 else 0)
    free = _free(state, attach, layout)
    need = pending if attach >= 0 else 0  # a first atom, or one after '.', bonds to nothing
    # while a ring is open, the chain's last atom must keep a bond, unless an atom that an
    # open branch hangs from still has one (the chain can go on from there)
    keep = 0 if _branch_room(state, layout, attach, need) else 1
    possible = False
    for token in range(kinds.shape[0]):
        ok, closes, kind = followers[code, token], False, kinds[token]
        if ok and kind == ATOM:
            ok = free >= need and capacity[token] >= need + (keep if open_rings > 0 else 0)
        elif ok and kind == BOND:
            ok = bond_order[token] <= free
        elif ok and kind == OPEN:
            ok = free >= 1
        elif ok and kind == CLOSE:
            ok = open_rings == 0 or keep == 0  # not back to a full atom with a ring open
            closes = True
        elif ok and kind == RING:
            label = ring_slot[token]
            opened_at = state[rings_from + label]
            if opened_at != CLOSED:  # closing: the larger of the two orders, not on a bonded atom
                order = max(state[orders_from + label], pending)
                rings_after = open_rings - 1
                bonded = opened_at >= 0 and (  # an atom not followed (past TRACKED_DEPTH) bonds to nothing known
                    opened_at == attach or opened_at == state[PARENT] or opened_at == state[PARTNER]
                    or _chain_bonded(state, layout, opened_at, attach)
                )
                raised = order - state[orders_from + label]  # taken from the opener too: it may be a branch's parent
                keep_after = keep if raised == 0 else (0 if _branch_room(state, layout, opened_at, raised) else 1)
                ok = not bonded and order + (keep_after if rings_after > 0 else 0) <= free
                closes = True
            else:
                ok = pending + keep <= free
        allowed[token] = ok
        closers[token] = ok and closes
        possible = possible or ok
    if not possible:  # the rules cannot complete this sequence (a full atom, a ring open): it ends
        allowed[eos] = True
        return
    if state[LEFT] - 1 < depth + RING_ENDING * (open_rings + 1):  # a ring opened now could not close in time
        _finish_in_time(state, allowed, kinds, ring_slot, layout, depth, open_rings)
    if _has_aromatic_atoms(state, layout):
        _refuse_unkekulizable(state, allowed, closers, logits, margin, check_of, stand_in, kinds,
                              capacity, aromatic, bond_order, bond_aromatic, ring_slot, layout)
    closers &= allowed  # only closers still allowed share <eos>'s probability


@numba.njit(cache=True)
def _open_rings(state, layout):
    """How many ring labels are open."""
    count = 0
    for label in range(layout[LABEL_COUNT]):
        count += state[layout[RINGS_AT] + label] != CLOSED
    return count


@numba.njit(cache=True)
def _branch_room(state, layout, losing, taken):
    """Whether an atom that an open branch hangs from has a bond left, ``taken`` of ``losing``'s
    valence being about to go (a branch's parent losing its bond to the branch's first atom, or
    a ring's opener whose closure raises the bond order)."""
    depth = state[DEPTH]
    if depth > TRACKED_DEPTH:
        return True  # not followed that deep: assume it has
    for level in range(depth):
        atom = state[STACK_FROM + level]
        if _free(state, atom, layout) - (taken if atom == losing else 0) >= 1:
            return True
    return False


@numba.njit(cache=True)
def _finish_in_time(state, allowed, kinds, ring_slot, layout, depth, open_rings):
    """Near the generation limit, keep only the tokens after which the sequence can still be
    completed in the tokens left, counting a ')' per open branch, an atom after a bond, '(' or
    '.', and three tokens per open ring (an atom to close it on and its label, and one more atom
    where the chain's atom is bonded to the ring's opener or lacks room). Where no token can,
    those that leave the least to write: the count is a rough bound, not the shortest ending."""
    cost = np.full(len(kinds), NO_LIMIT, dtype=np.int64)
    least = NO_LIMIT
    for token in range(len(kinds)):
        if not allowed[token]:
            continue
        kind, branches, rings, atom_needed = kinds[token], depth, open_rings, 0
        if kind == BOND or kind == DOT:
            atom_needed = 1
        elif kind == OPEN:
            branches, atom_needed = depth + 1, 1
        elif kind == CLOSE:
            branches = depth - 1
        elif kind == RING:
            rings += 1 if state[layout[RINGS_AT] + ring_slot[token]] == CLOSED else -1
        cost[token] = 0 if kind == END else atom_needed + branches + RING_ENDING * rings
        least = min(least, cost[token])
    budget = max(state[LEFT] - 1, least)
    for token in range(len(kinds)):
        allowed[token] = allowed[token] and cost[token] <= budget


@numba.njit(cache=True)
def _refuse_unkekulizable(state, allowed, closers, logits, margin, check_of, stand_in, kinds, capacity, aromatic,
                          bond_order, bond_aromatic, ring_slot, layout):
    """Refuse, among the allowed tokens, those after which the aromatic atoms cannot be
    kekulized, down to ``margin`` nats below the likeliest token kept (tokens further down are
    left unchecked: too unlikely to be drawn), and every token that closes a branch or ring
    (:func:`_restrict_rows` may give them <eos>'s probability). If that refuses them all (the
    molecule cannot be saved), the grammar alone decides, and the string still parses."""
    checks = np.full(len(stand_in) + 1, -1, dtype=np.int64)  # -1 not run yet, else 0 / 1
    kept = allowed.copy()
    top = -np.inf
    for token in range(len(kinds)):
        if allowed[token]:
            top = max(top, logits[token])
    attach = state[ATTACH]
    # what follows an atom that never takes a double bond leaves the matching as it is, unless
    # it seals atoms that could still bond (a branch's or ring's end, a '.', the end)
    plain = attach < 0 or attach >= TRACKED_ATOMS or not (
        state[layout[CLASS_AT] + attach] == STRICT or state[layout[CLASS_AT] + attach] == LOOSE)
    checked = np.empty(len(kinds), dtype=np.bool_)  # set up front for the tokens that need no check
    for token in range(len(kinds)):
        kind = kinds[token]
        unchanged = plain and (kind == ATOM or kind == BOND or kind == OPEN or (
            kind == RING and state[layout[RINGS_AT] + ring_slot[token]] == CLOSED))
        checked[token] = check_of[token] < 0 or unchanged
    floor = top - margin
    while True:  # down to `margin` below the likeliest token kept; none kept: the floor drops to -inf, all are checked
        best = -np.inf
        for token in range(len(kinds)):
            # tokens that close a branch or ring are always checked: they may inherit <eos>'s probability
            if kept[token] and not checked[token] and (logits[token] >= floor or closers[token]):
                kept[token] = _kekulizable_after(state, token, check_of, stand_in, checks, kinds, capacity, aromatic,
                                                 bond_order, bond_aromatic, ring_slot, layout)
                checked[token] = True
            if kept[token] and logits[token] >= floor:
                best = max(best, logits[token])
        if best - margin >= floor:
            break
        floor = best - margin
    if kept.any():
        allowed[:] = kept


@numba.njit(cache=True)
def _chain_bonded(state, layout, first, second):
    """Whether two followed atoms are bonded by the chain (either hangs from the other)."""
    if not (0 <= first < TRACKED_ATOMS and 0 <= second < TRACKED_ATOMS):
        return False
    parents = layout[PARENTS_AT]
    return state[parents + first] == second or state[parents + second] == first


@numba.njit(cache=True)
def _has_aromatic_atoms(state, layout):
    if state[UNCHECKED]:
        return False
    for atom in range(min(state[ATOMS], TRACKED_ATOMS)):
        if state[layout[CLASS_AT] + atom] != NOT_AROMATIC:
            return True
    return False


@numba.njit(cache=True)
def _kekulizable_after(state, token, check_of, stand_in, checks, kinds, capacity, aromatic, bond_order,
                       bond_aromatic, ring_slot, layout):
    """Whether the aromatic atoms can still be kekulized after ``token`` (after a bond, after some
    atom or ring label that may follow it; after '(', the same or a bond first). It runs once
    per row for each check that tokens share."""
    check = check_of[token]
    if kinds[token] == RING and state[layout[RINGS_AT] + ring_slot[token]] == CLOSED:
        check = len(checks) - 1  # every label that opens a ring shares one check
    if checks[check] < 0:
        stand = token if kinds[token] == RING else stand_in[check]
        after = _advanced(state, stand, kinds, capacity, aromatic, bond_order, bond_aromatic, ring_slot, layout)
        if kinds[stand] == BOND or kinds[stand] == OPEN:
            ok = _kekulizable_next(after, stand_in, kinds, capacity, aromatic, bond_order, bond_aromatic, ring_slot, layout)
            if kinds[stand] == OPEN:  # '(' may also go on with a bond, then an atom or ring label
                for other in range(len(stand_in)):
                    bond = stand_in[other]
                    if not ok and bond >= 0 and kinds[bond] == BOND:
                        bonded = _advanced(after, bond, kinds, capacity, aromatic, bond_order, bond_aromatic, ring_slot,
                                           layout)
                        ok = _kekulizable_next(bonded, stand_in, kinds, capacity, aromatic, bond_order, bond_aromatic,
                                               ring_slot, layout)
            checks[check] = ok
        else:
            checks[check] = _kekulizable(after, layout, kinds[stand] == END)
    return checks[check] == 1


@numba.njit(cache=True)
def _kekulizable_next(state, stand_in, kinds, capacity, aromatic, bond_order, bond_aromatic, ring_slot, layout):
    """Whether some atom or ring label can follow and keep the aromatic atoms kekulizable."""
    for check in range(len(stand_in)):
        token = stand_in[check]
        if token >= 0 and (kinds[token] == ATOM or kinds[token] == RING):
            after = _advanced(state, token, kinds, capacity, aromatic, bond_order, bond_aromatic, ring_slot, layout)
            if _kekulizable(after, layout, False):
                return True
    return False


@numba.njit(cache=True)
def _advanced(state, token, kinds, capacity, aromatic, bond_order, bond_aromatic, ring_slot, layout):
    """A copy of one row's state after ``token`` (the row itself is left as it is)."""
    after = state.copy()
    _advance_row(after, token, kinds, capacity, aromatic, bond_order, bond_aromatic, ring_slot, layout)
    return after


@numba.njit(cache=True)
def _kekulizable(state, layout, ended):
    """Whether some ending of this row can kekulize its aromatic atoms: a matching of aromatic
    ring bonds must give a double bond to every sealed atom that needs one (STRICT atoms with
    valence left), while atoms that later tokens can still bond to (the chain's end, the atoms
    branches hang from, ring openers) may take one or not. Chain bonds count once a ring closure
    spans them, or while one still can (they lie between two atoms that can still bond)."""
    if state[UNCHECKED]:
        return True
    atoms = state[ATOMS]
    weight = np.zeros(atoms, dtype=np.int64)  # > 0: the atom can still take bonds
    free = layout[FREE_AT]
    if not ended:  # the chain's end and the atoms branches hang from, if they have room; ring openers
        if state[ATTACH] >= 0 and state[free + state[ATTACH]] >= 1:
            weight[state[ATTACH]] += 1
        for depth in range(state[DEPTH]):
            if state[STACK_FROM + depth] >= 0 and state[free + state[STACK_FROM + depth]] >= 1:
                weight[state[STACK_FROM + depth]] += 1
        for label in range(layout[LABEL_COUNT]):
            if state[layout[RINGS_AT] + label] >= 0:
                weight[state[layout[RINGS_AT] + label]] += 1
    parents, chain = layout[PARENTS_AT], layout[CHAIN_AT]
    below = weight.copy()  # bondable atoms in each atom's subtree (children come after parents)
    for atom in range(atoms - 1, -1, -1):
        if state[parents + atom] >= 0:
            below[state[parents + atom]] += below[atom]
    root = np.empty(atoms, dtype=np.int64)
    for atom in range(atoms):
        root[atom] = atom if state[parents + atom] < 0 else root[state[parents + atom]]
    neighbours, degree = np.full((atoms, 4), -1, dtype=np.int64), np.zeros(atoms, dtype=np.int64)
    for atom in range(atoms):
        bond = state[chain + atom]
        if bond == CHAIN_IN_RING or (bond == CHAIN_AROMATIC and 0 < below[atom] < below[root[atom]]):
            if not _add_bond(neighbours, degree, atom, state[parents + atom]):
                return True
    for closure in range(state[CLOSURES]):
        first, second = state[layout[CLOSURES_AT] + 2 * closure], state[layout[CLOSURES_AT] + 2 * closure + 1]
        if not _add_bond(neighbours, degree, first, second):
            return True
    # with a ring open, the chain's last atom takes one more bond before the end unless a
    # branch's parent can (_fill_masks): a double bond needs room beyond it
    keeps_bond = not ended and _open_rings(state, layout) > 0 and not _branch_room(state, layout, NO_ATOM, 0)
    committed = state[ATTACH] if keeps_bond else NO_ATOM
    role = np.zeros(atoms, dtype=np.int64)  # 0: no double bond, 1: may take one, 2: must
    for atom in range(atoms):
        aromatic = state[layout[CLASS_AT] + atom]
        room = state[layout[FREE_AT] + atom] - (1 if atom == committed else 0)
        if (aromatic == STRICT or aromatic == LOOSE) and room >= 1:
            role[atom] = 2 if aromatic == STRICT and weight[atom] == 0 else 1
    return _match_all(neighbours, degree, role, KEKULE_BUDGET)


@numba.njit(cache=True)
def _add_bond(neighbours, degree, first, second):
    """Record a bond both ways; ``False`` when an atom already has the most the table holds."""
    if degree[first] == neighbours.shape[1] or degree[second] == neighbours.shape[1]:
        return False
    neighbours[first, degree[first]], neighbours[second, degree[second]] = second, first
    degree[first] += 1
    degree[second] += 1
    return True


@numba.njit(cache=True)
def _match_all(neighbours, degree, role, budget):
    """Whether every atom whose role is 'must' (2) can be paired over a bond with a distinct atom
    that may take a double bond (role > 0): the most constrained atom first, backtracking over its
    choices (a loop, not recursion: numba's cache does not keep recursive functions). Past
    ``budget`` choices the answer is yes, so that what is not settled is never refused."""
    partner = np.full(len(role), -1, dtype=np.int64)
    chosen_atoms, tried = np.empty(len(role) + 1, dtype=np.int64), np.empty(len(role) + 1, dtype=np.int64)
    level = 0
    while True:
        chosen, fewest = -1, 1 << 30
        for atom in range(len(role)):
            if role[atom] == 2 and partner[atom] < 0:
                choices = 0
                for k in range(degree[atom]):
                    other = neighbours[atom, k]
                    choices += role[other] > 0 and partner[other] < 0
                if choices < fewest:
                    chosen, fewest = atom, choices
        if chosen < 0:
            return True
        if fewest > 0:
            budget -= 1
            if budget < 0:
                return True
            chosen_atoms[level], tried[level] = chosen, -1
            level += 1
        while True:  # the next choice of the deepest atom that has one left, undoing those that have none
            if level == 0:
                return False
            atom = chosen_atoms[level - 1]
            if tried[level - 1] >= 0:
                other = neighbours[atom, tried[level - 1]]
                partner[atom], partner[other] = -1, -1
            k = tried[level - 1] + 1
            while k < degree[atom] and not (role[neighbours[atom, k]] > 0 and partner[neighbours[atom, k]] < 0):
                k += 1
            if k < degree[atom]:
                tried[level - 1] = k
                partner[atom], partner[neighbours[atom, k]] = neighbours[atom, k], atom
                break
            level -= 1


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
def _advance_rows(table, tokens, kinds, capacity, aromatic, bond_order, bond_aromatic, ring_slot, layout):
    for row in range(table.shape[0]):
        _advance_row(table[row], tokens[row], kinds, capacity, aromatic, bond_order, bond_aromatic, ring_slot, layout)


@numba.njit(cache=True)
def _advance_row(state, token, kinds, capacity, aromatic, bond_order, bond_aromatic, ring_slot, layout):
    kind, attach, pending = kinds[token], state[ATTACH], state[PENDING]
    free = layout[FREE_AT]
    if kind == OPEN:  # the branch hangs from ATTACH
        depth = state[DEPTH]
        if depth < TRACKED_DEPTH:
            state[STACK_FROM + depth] = attach
        else:
            state[UNCHECKED] = 1
        state[DEPTH] = depth + 1
    elif kind == CLOSE:  # back to the atom the branch hangs from
        depth = state[DEPTH] - 1
        state[ATTACH] = state[STACK_FROM + depth] if 0 <= depth < TRACKED_DEPTH else NO_ATOM
        state[PARENT] = NO_ATOM  # not tracked for the atom a branch returns to
        state[DEPTH] = depth
    elif kind == ATOM:  # bonded to ATTACH with the pending order; the next bonds go to it
        atom = state[ATOMS]
        bond = pending if attach >= 0 else 0
        if 0 <= attach < TRACKED_ATOMS:
            state[free + attach] -= bond
            _take_double_bond(state, layout, attach, bond)
        if atom < TRACKED_ATOMS:
            state[free + atom] = capacity[token] - bond
            state[layout[CLASS_AT] + atom] = aromatic[token]
            _take_double_bond(state, layout, atom, bond)
            state[layout[PARENTS_AT] + atom] = attach if 0 <= attach < TRACKED_ATOMS else -1
            aromatic_bond = (0 <= attach < TRACKED_ATOMS and state[PENDING_AROMATIC] == 1 and aromatic[token] != NOT_AROMATIC
                             and state[layout[CLASS_AT] + attach] != NOT_AROMATIC)
            state[layout[CHAIN_AT] + atom] = CHAIN_AROMATIC if aromatic_bond else CHAIN_NONE
        else:
            state[UNCHECKED] = 1
        state[PARENT], state[ATTACH], state[ATOMS] = attach, atom, atom + 1
    elif kind == RING:  # opens on ATTACH, or closes there with the larger of the two orders
        label = ring_slot[token]
        opened_at = state[layout[RINGS_AT] + label]
        if opened_at != CLOSED:
            order = max(state[layout[ORDERS_AT] + label], pending)
            if 0 <= opened_at < TRACKED_ATOMS:  # the opener took the order written where the ring opened
                state[free + opened_at] -= order - state[layout[ORDERS_AT] + label]
                _take_double_bond(state, layout, opened_at, order)
            aromatic_bond = state[layout[RING_AROMATIC_AT] + label] == 1 and state[PENDING_AROMATIC] == 1
            _close_ring(state, layout, opened_at, attach, aromatic_bond)
            state[PARTNER], state[layout[RINGS_AT] + label] = opened_at, CLOSED
        else:
            order = pending
            state[layout[RINGS_AT] + label] = attach
            state[layout[RING_AROMATIC_AT] + label] = state[PENDING_AROMATIC]
        state[layout[ORDERS_AT] + label] = order
        if 0 <= attach < TRACKED_ATOMS:
            state[free + attach] -= order
            _take_double_bond(state, layout, attach, order)
    elif kind == DOT:  # nothing to bond to; a ring still open will join the two parts, which is not followed
        state[ATTACH] = NO_ATOM
        if _open_rings(state, layout) > 0:
            state[UNCHECKED] = 1
    if kind == ATOM or kind == CLOSE or kind == DOT:
        state[PARTNER] = NO_ATOM  # only the last closure on the chain's current atom is remembered
    state[LEFT] -= 1
    state[PENDING] = bond_order[token] if kind == BOND else 1
    state[PENDING_AROMATIC] = bond_aromatic[token] if kind == BOND else 1
    state[LAST] = BRANCH_BOND if kind == BOND and state[LAST] == OPEN else kind


@numba.njit(cache=True)
def _take_double_bond(state, layout, atom, order):
    """An aromatic atom written with an explicit double (or higher) bond has its double bond
    already: it need not take one in the ring (it may still, as far as these rules know)."""
    if order >= 2 and state[layout[CLASS_AT] + atom] == STRICT:
        state[layout[CLASS_AT] + atom] = LOOSE


@numba.njit(cache=True)
def _close_ring(state, layout, opened_at, attach, aromatic_bond):
    """A ring closure between two followed atoms: the chain bonds on the path between them are
    ring bonds now, and an aromatic closure bond is recorded for kekulization."""
    if not (0 <= opened_at < TRACKED_ATOMS and 0 <= attach < TRACKED_ATOMS):
        state[UNCHECKED] = 1
        return
    classes, parents = layout[CLASS_AT], layout[PARENTS_AT]
    if aromatic_bond and state[classes + opened_at] != NOT_AROMATIC and state[classes + attach] != NOT_AROMATIC:
        if state[CLOSURES] == TRACKED_CLOSURES:
            state[UNCHECKED] = 1
        else:
            at = layout[CLOSURES_AT] + 2 * state[CLOSURES]
            state[at], state[at + 1] = opened_at, attach
            state[CLOSURES] += 1
    first, second = attach, opened_at  # up the chain from the later one until the paths meet
    while first != second and first >= 0 and second >= 0:
        if first < second:
            first, second = second, first
        if state[layout[CHAIN_AT] + first] == CHAIN_AROMATIC:
            state[layout[CHAIN_AT] + first] = CHAIN_IN_RING
        first = state[parents + first]

"""A compact set of match keys (scriptPubKeys): what a follower looks for in every output.

A Python `set` of a million 22-byte scripts takes about 93 MB (a bytes object and a table
slot each). This one keeps only a 64-bit hash of each key, in an open-addressing table
held in one `array` (linear probing, load at most one half), and a one-byte-per-entry
filter four times the table's length for bulk lookups: 25 MB for a million keys.
A hit means "watched, with a chance of about one in 2^64 per lookup that it is not"; the
caller confirms every hit against the database (the payment tracker looks the key up and
ignores one that names no invoice), so a hash collision costs a query, never a payment.

The hashes are Python's own `hash(bytes)` (SipHash, salted per process): the table lives
in one process and is rebuilt from the database at start."""

from array import array
from collections.abc import Iterable, Sequence
from itertools import compress, repeat
from operator import and_, eq, itemgetter, not_

_EMPTY = 0
_MIN_SLOTS = 1 << 10
FILTER_FACTOR = 4  # filter bytes per slot: at most 1 stranger in 8 passes the filter
MAX_SHAPES = 8  # distinct (length, first two bytes) of the keys; more: no shapes kept


class KeySet:
    """Implements `chains.base.Watched` (membership) for bytes keys; grows, never shrinks
    (an address handed out stays watched)."""

    __slots__ = ("_count", "_filter", "_filter_mask", "_mask", "_shapes", "_slots")

    def __init__(self, keys: Iterable[bytes] = ()) -> None:
        self._slots = array("q", bytes(8 * _MIN_SLOTS))
        self._mask = _MIN_SLOTS - 1
        # FILTER_FACTOR bytes per slot, set where some key's hash points (its low bits,
        # two more than the slot's): `members` drops most strangers by it in one C pass.
        self._filter = bytearray(FILTER_FACTOR * _MIN_SLOTS)
        self._filter_mask = FILTER_FACTOR * _MIN_SLOTS - 1
        self._count = 0
        # What the keys look like: (length, first two bytes), e.g. (22, b"\0\x14") for
        # P2WPKH; None once there are too many kinds (or a key shorter than 3 bytes).
        self._shapes: set[tuple[int, bytes]] | None = set()
        self.update(keys)

    def shapes(self) -> frozenset[tuple[int, bytes]] | None:
        """The (length, first two bytes) of every key, or None when not tracked."""
        return None if self._shapes is None else frozenset(self._shapes)

    def _shape(self, key: bytes) -> None:
        if self._shapes is None:
            return
        if len(key) < 3:
            self._shapes = None
            return
        self._shapes.add((len(key), key[:2]))
        if len(self._shapes) > MAX_SHAPES:
            self._shapes = None

    def members(self, keys: Sequence[bytes]) -> set[bytes]:
        """Those of `keys` that are in the set: `key in self` for many keys at once, the
        probing done a round at a time over all of them in C (`map`, `itemgetter`)."""
        if not keys:
            return set()
        hashes = list(map(hash, keys))
        if _EMPTY in hashes:
            hashes = [h or 1 for h in hashes]
        marks = itemgetter(*map(and_, hashes, repeat(self._filter_mask)))(self._filter)
        if len(hashes) == 1:
            marks = (marks,)
        if not any(marks):
            return set()
        live = list(compress(keys, marks))
        hashes = list(compress(hashes, marks))
        slots, mask = self._slots, self._mask
        where = list(map(and_, hashes, repeat(mask)))
        members: set[bytes] = set()
        while live:
            found = itemgetter(*where)(slots) if len(where) > 1 else (slots[where[0]],)
            equal = list(map(eq, hashes, found))
            if any(equal):
                members.update(compress(live, equal))
            # Probe on only where the slot held another key.
            more = list(map(and_, map(bool, found), map(not_, equal)))
            live = list(compress(live, more))
            hashes = list(compress(hashes, more))
            where = [(i + 1) & mask for i in compress(where, more)]
        return members

    @staticmethod
    def _hash(key: bytes) -> int:
        h = hash(key)
        return h if h != _EMPTY else 1

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes):
            return False
        h = hash(key)
        if h == _EMPTY:
            h = 1
        slots, mask = self._slots, self._mask
        i = h & mask
        while True:
            v = slots[i]
            if v == h:
                return True
            if v == _EMPTY:
                return False
            i = (i + 1) & mask

    def __len__(self) -> int:
        return self._count

    def add(self, key: bytes) -> None:
        self._shape(key)
        self._insert(self._hash(key))

    def update(self, keys: Iterable[bytes]) -> None:
        for key in keys:
            self._shape(key)
            self._insert(self._hash(key))

    def table(self) -> "tuple[array[int], int]":
        """The slots and the index mask, for a scanner that probes inline (a method call
        per output is a good part of a block scan); `hash(key) or 1`, then linear probing
        from `hash & mask` until the hash (watched) or 0 (not)."""
        return self._slots, self._mask

    def nbytes(self) -> int:
        """Memory held by the table and its filter (the object headers aside)."""
        return self._slots.buffer_info()[1] * self._slots.itemsize + len(self._filter)

    def _insert(self, h: int) -> None:
        slots, mask = self._slots, self._mask
        i = h & mask
        while True:
            v = slots[i]
            if v == h:
                return  # already there (or a colliding key: the same answer either way)
            if v == _EMPTY:
                break
            i = (i + 1) & mask
        slots[i] = h
        self._filter[h & self._filter_mask] = 1
        self._count += 1
        if 2 * self._count > len(slots):
            self._grow()

    def _grow(self) -> None:
        old = self._slots
        size = 2 * len(old)
        self._slots = array("q", bytes(8 * size))
        self._mask = size - 1
        self._filter = bytearray(FILTER_FACTOR * size)
        self._filter_mask = FILTER_FACTOR * size - 1
        self._count = 0
        for h in old:
            if h != _EMPTY:
                self._insert(h)

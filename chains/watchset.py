"""A compact set of match keys (scriptPubKeys): what a follower looks for in every output.

A Python `set` of a million 22-byte scripts takes about 93 MB (a bytes object and a table
slot each). This one keeps only a 64-bit hash of each key, in an open-addressing table
held in one `array` (linear probing, load at most one half: 16 MB for a million keys).
A hit means "watched, with a chance of about one in 2^64 per lookup that it is not"; the
caller confirms every hit against the database (the payment tracker looks the key up and
ignores one that names no invoice), so a hash collision costs a query, never a payment.

The hashes are Python's own `hash(bytes)` (SipHash, salted per process): the table lives
in one process and is rebuilt from the database at start."""

from array import array
from collections.abc import Iterable

_EMPTY = 0
_MIN_SLOTS = 1 << 10


class KeySet:
    """Implements `chains.base.Watched` (membership) for bytes keys; grows, never shrinks
    (an address handed out stays watched)."""

    __slots__ = ("_count", "_mask", "_slots")

    def __init__(self, keys: Iterable[bytes] = ()) -> None:
        self._slots = array("q", bytes(8 * _MIN_SLOTS))
        self._mask = _MIN_SLOTS - 1
        self._count = 0
        self.update(keys)

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
        self._insert(self._hash(key))

    def update(self, keys: Iterable[bytes]) -> None:
        for key in keys:
            self._insert(self._hash(key))

    def table(self) -> "tuple[array[int], int]":
        """The slots and the index mask, for a scanner that probes inline (a method call
        per output is a good part of a block scan); `hash(key) or 1`, then linear probing
        from `hash & mask` until the hash (watched) or 0 (not)."""
        return self._slots, self._mask

    def nbytes(self) -> int:
        """Memory held by the table itself (the object headers aside)."""
        return self._slots.buffer_info()[1] * self._slots.itemsize

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
        self._count += 1
        if 2 * self._count > len(slots):
            self._grow()

    def _grow(self) -> None:
        old = self._slots
        size = 2 * len(old)
        self._slots = array("q", bytes(8 * size))
        self._mask = size - 1
        self._count = 0
        for h in old:
            if h != _EMPTY:
                self._insert(h)

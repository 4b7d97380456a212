"""The most common passwords, refused whatever their length: the 30,000 that zxcvbn (a
well-kept password-strength package) ranks by how often they appear in leaked password
sets. Loaded on the first check, not at import."""

import threading


class CommonPasswords:
    def __init__(self) -> None:
        self._words: frozenset[str] | None = None
        self._lock = threading.Lock()

    def _load(self) -> frozenset[str]:
        with self._lock:
            if self._words is None:
                from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]
                self._words = frozenset(FREQUENCY_LISTS["passwords"])
            return self._words

    def __call__(self, password: str) -> bool:
        words = self._words if self._words is not None else self._load()
        # The list is lower case; spaces are how people pad a common one to the minimum.
        folded = password.lower()
        return folded in words or "".join(folded.split()) in words

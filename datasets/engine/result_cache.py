"""Answers of uploaded datasets, kept in this process once DuckDB has given them.

A version file never changes once it is live (a new import is a new file), so DuckDB's answer to
a statement on it stays right for as long as the file exists: the engine keeps the rows DuckDB
returned, keyed by the version file and the statement's SQL and parameters, and answers the same
statement again without running it (a row by key: about 1 ms in DuckDB; a page with its count or
a quarter's aggregate over a million rows: tens of milliseconds). The SQL carries everything that
decides the rows (the columns selected, filters, the caller's row filters, ordering, limits), so a
call under other row filters, or after a column was edited in the admin, is another entry; masking
and the conversion of values to JSON apply to the kept rows as they do to DuckDB's, on every
answer. Databases served where they live (PostgreSQL, MySQL, SQLite, ClickHouse) change under
Gateway: their answers are never kept.

Nothing is built or written: an entry is what one statement fetched. The cache holds at most
GATEWAY_RESULT_CACHE_MB of values per process, the least recently used going first; an answer
larger than a sixteenth of that is not kept, so that one large answer does not push out many
small ones. The answers of a version file are forgotten when the file leaves this host.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from django.conf import settings

# What an entry costs beyond its text, counted generously: the key, the tuples, each value's
# Python object and the cache's own bookkeeping.
ENTRY_BYTES = 400
VALUE_BYTES = 64
# The largest answer kept is this fraction of the limit.
ENTRY_SHARE = 16


def _size(rows: Sequence[Sequence[Any]]) -> int:
    size = ENTRY_BYTES
    for row in rows:
        for value in row:
            size += VALUE_BYTES + (len(value) if isinstance(value, str | bytes) else 0)
    return size


class ResultCache:
    """Answers of statements, per version file, within a size limit."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple, tuple[Sequence[Sequence[Any]], int]] = OrderedDict()
        self._lock = threading.Lock()
        self.size = 0

    def get(self, file_path: str, key: Hashable) -> Sequence[Sequence[Any]] | None:
        """The rows kept for this statement on this version file, or None."""
        entry_key = (file_path, key)
        with self._lock:
            entry = self._entries.get(entry_key)
            if entry is None:
                return None
            self._entries.move_to_end(entry_key)
            return entry[0]

    def put(self, file_path: str, key: Hashable, rows: Sequence[Sequence[Any]]) -> None:
        """Keep the rows DuckDB answered; the least recently used go when the limit is passed."""
        limit = settings.GATEWAY_RESULT_CACHE_MB * 1024 * 1024
        if len(rows) * VALUE_BYTES > limit // ENTRY_SHARE:
            return  # not even counted: certainly too large
        size = _size(rows)
        if size > limit // ENTRY_SHARE:
            return
        entry_key = (file_path, key)
        with self._lock:
            previous = self._entries.pop(entry_key, None)
            if previous is not None:
                self.size -= previous[1]
            self._entries[entry_key] = (tuple(rows), size)
            self.size += size
            while self.size > limit:
                _, (_, dropped) = self._entries.popitem(last=False)
                self.size -= dropped

    def forget_files(self, file_paths: Iterable[str]) -> None:
        """Drop the answers of version files that left this host (evicted, replaced, deleted)."""
        gone = set(file_paths)
        if not gone:
            return
        with self._lock:
            for entry_key in [key for key in self._entries if key[0] in gone]:
                self.size -= self._entries.pop(entry_key)[1]

    def files(self) -> set[str]:
        """The version files whose answers are kept."""
        with self._lock:
            return {file_path for file_path, _ in self._entries}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.size = 0

    def __len__(self) -> int:
        return len(self._entries)


result_cache = ResultCache()

"""Append-only store of measurements, one JSON-lines file per device.

Profiling a space takes minutes on the host and much longer on a phone, so every measurement is
appended (and fsync'ed) the moment it exists: a crash or Ctrl-C loses at most the block being
timed, and the next ``profile`` skips every key already stored. Re-measuring (``--force``) appends
newer records; the latest record of a key wins, and history is never rewritten.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from latency.backends.base import LatencyStats
from latency.cache import cache_root
from latency.errors import LatencyRuntimeError
from padnas.fileio import append_jsonl, read_jsonl


class StoreError(LatencyRuntimeError):
    """A store file that cannot be read (e.g. a corrupt record in the middle)."""


_NAME = re.compile(r"^[A-Za-z0-9_.@+-]+$")


class MeasurementStore:
    """Measurements of one device: ``{key: record}``, latest record per key wins."""

    def __init__(self, device: str, root: str | Path | None = None) -> None:
        if not _NAME.match(device):
            raise StoreError(f"device name {device!r} cannot name a store file")
        self.device = device
        self.root = Path(root) if root is not None else cache_root() / "measurements"
        self.path = self.root / f"{device}.jsonl"
        self._records: dict[str, dict] | None = None

    def records(self) -> dict[str, dict]:
        """Latest record per key (read once, then kept in step with :meth:`add`)."""
        if self._records is None:
            try:
                self._records = {r["key"]: r for r in read_jsonl(self.path) if "key" in r}
            except ValueError as exc:
                raise StoreError(str(exc)) from None
        return self._records

    def __contains__(self, key: str) -> bool:
        return key in self.records()

    def __len__(self) -> int:
        return len(self.records())

    def get(self, key: str) -> dict | None:
        return self.records().get(key)

    def add(self, key: str, stats: LatencyStats, **meta) -> dict:
        """Append one measurement durably and return its record."""
        rec = {
            "key": key,
            "ms": stats.ms,
            "p10": stats.p10,
            "p90": stats.p90,
            "n": stats.n,
            "source": stats.source,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **({"extra": stats.extra} if stats.extra else {}),
            **meta,
        }
        append_jsonl(self.path, [rec])
        self.records()[key] = rec
        return rec

    def missing(self, keys, force: bool = False) -> list[str]:
        """Keys still to measure (all of them with ``force``), in the given order."""
        if force:
            return list(keys)
        have = self.records()
        return [k for k in keys if k not in have]

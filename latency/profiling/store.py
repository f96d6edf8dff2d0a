"""Append-only store of measurements, one JSON-lines file per device.

Profiling a space takes minutes on the host and much longer on a phone, so every measurement is
appended (and fsync'ed) the moment it exists: a crash or Ctrl-C loses at most the block being
timed, and the next ``profile`` skips every key already stored. Re-measuring (``--force``) appends
newer records; the latest record of a key wins, and history is never rewritten -- except a
torn last line (a record half-written when the job was killed), which is skipped with a note and
cut off by the next append. Any other damaged line is refused, naming the file and line: a
silently skipped record would be re-measured under the same key, or worse, read as another value.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from latency.backends.base import LatencyStats
from latency.cache import cache_root
from latency.errors import LatencyRuntimeError
from latency.lut.table import SOURCES
from latency.variants import DEFAULT_PRECISION, PRECISIONS
from padnas.core import append_jsonl, atomic_write_json, iter_jsonl, read_json


class StoreError(LatencyRuntimeError):
    """A store file that cannot be read (e.g. a corrupt record in the middle)."""


_NAME = re.compile(r"^[A-Za-z0-9_.@+-]+$")
_FIX = "delete the line (its variant is measured again by the next profile)"


def _note_stderr(msg: str) -> None:
    tqdm.write(f"note: {msg}", file=sys.stderr)  # above any progress bar, not through it


def _is_ms(value) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def check_record(record: dict, where: str) -> None:
    """Refuse a store record that ``add`` could not have written: the key, the times (finite,
    non-negative ms), the run count and the source are checked; ``where`` is ``file:line``."""
    problem = None
    key, n = record.get("key"), record.get("n", 0)
    if not isinstance(key, str) or not key:
        problem = f"'key' must be a non-empty string, got {key!r}"
    elif not _is_ms(record.get("ms")):
        problem = f"ms={record.get('ms')!r} is not a finite non-negative number"
    elif bad := [f for f in ("p10", "p90") if f in record and not _is_ms(record[f])]:
        problem = f"{bad[0]}={record[bad[0]]!r} is not a finite non-negative number"
    elif isinstance(n, bool) or not isinstance(n, int) or n < 0:
        problem = f"n={n!r} must be a non-negative integer"
    elif record.get("source") not in SOURCES:
        problem = f"source {record.get('source')!r} is not one of {', '.join(SOURCES)}"
    if problem:
        raise StoreError(f"{where}: damaged record ({problem}); {_FIX}")


class MeasurementStore:
    """Measurements of one device: ``{key: record}``, latest record per key wins."""

    def __init__(
        self,
        device: str,
        root: str | Path | None = None,
        note: Callable[[str], None] | None = None,
        precision: str = DEFAULT_PRECISION,
    ) -> None:
        if not _NAME.match(device):
            raise StoreError(f"device name {device!r} cannot name a store file")
        if precision not in PRECISIONS:
            raise StoreError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        self.device, self.precision = device, precision
        self.root = Path(root) if root is not None else cache_root() / "measurements"
        # int8 timings of a device are another table: a file of their own beside the float one
        suffix = "" if precision == DEFAULT_PRECISION else f".{precision}"
        self.path = self.root / f"{device}{suffix}.jsonl"
        self._records: dict[str, dict] | None = None
        #: hears of a torn last line that reading skipped [default: a ``note:`` on stderr]
        self.note = note or _note_stderr

    def records(self) -> dict[str, dict]:
        """Latest record per key (read once, then kept in step with :meth:`add`)."""
        if self._records is None:
            records = {}
            try:
                for line, record in iter_jsonl(self.path, on_torn=self.note):
                    check_record(record, f"{self.path}:{line}")
                    records[record["key"]] = record
            except ValueError as exc:
                raise StoreError(str(exc)) from None
            self._records = records
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

    @property
    def conditions_path(self) -> Path:
        """Beside the store: the fingerprint behind each ``conditions`` id of its records."""
        return self.root / f"{self.device}.conditions.json"

    def conditions(self) -> dict[str, dict]:
        """``{conditions id: fingerprint}`` of the guarded batches stored so far."""
        if not self.conditions_path.exists():
            return {}
        return read_json(self.conditions_path, expect=dict, fix=f"delete {self.conditions_path}")

    def remember_conditions(self, ident: str, facts: dict) -> None:
        """Keep the fingerprint of a conditions id (written atomically, once per id)."""
        known = self.conditions()
        if ident not in known:
            atomic_write_json(self.conditions_path, {**known, ident: facts})

    def missing(self, keys, force: bool = False) -> list[str]:
        """Keys still to measure (all of them with ``force``), in the given order."""
        if force:
            return list(keys)
        have = self.records()
        return [k for k in keys if k not in have]

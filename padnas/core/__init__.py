"""The foundation both packages stand on; it imports nothing else of the project.

Errors and their exit codes (:mod:`.errors`), crash-safe files (:mod:`.atomic`), the one strict
JSON reader (:mod:`.strict_json`), output paths (:mod:`.paths`), progress bars (:mod:`.progress`)
and the plumbing of the two thin click layers (:mod:`.cli`).
"""

from padnas.core.atomic import (
    append_jsonl,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    iter_jsonl,
    read_jsonl,
)
from padnas.core.paths import check_output, make_dir
from padnas.core.strict_json import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    check_schema,
    parse_json,
    read_input_json,
    read_json,
)

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "append_jsonl",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_output",
    "check_schema",
    "iter_jsonl",
    "make_dir",
    "parse_json",
    "read_input_json",
    "read_json",
    "read_jsonl",
]

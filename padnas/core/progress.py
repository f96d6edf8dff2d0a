"""Progress bars for long work, calm when written to a log.

tqdm redraws several times a second; in a log file or CI output every redraw becomes a line,
so a quick search alone wrote thousands. tqdm reads ``TQDM_MININTERVAL`` only when it is first
imported, too early for a CLI to set it, so the choice is made here, per bar: when stderr is not
a terminal, redraw at most every 30 s unless the user set ``TQDM_MININTERVAL`` themselves.
"""

from __future__ import annotations

import os
import sys

LOGGED_MININTERVAL_S = 30.0


def progress_bar(*args, **kwargs):
    """A ``tqdm`` bar; arguments as tqdm's. Imported lazily so light commands stay fast."""
    from tqdm import tqdm

    if "TQDM_MININTERVAL" not in os.environ and not _is_terminal(sys.stderr):
        kwargs.setdefault("mininterval", LOGGED_MININTERVAL_S)
    return tqdm(*args, **kwargs)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False

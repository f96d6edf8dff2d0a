"""Progress bars must not flood logs: one redraw per step turned a quick search into
thousands of lines of CI output."""

import io
import os
import subprocess
import sys

from padnas.core.progress import LOGGED_MININTERVAL_S, progress_bar


class _Tty(io.StringIO):
    def isatty(self):
        return True


def _drive(monkeypatch, stream, steps=600, step_s=0.5):
    """Redraws over ``steps`` updates, each taking ``step_s`` on a simulated clock."""
    monkeypatch.setattr(sys, "stderr", stream)
    with progress_bar(total=steps, desc="train", file=stream) as bar:
        now = [bar.start_t]

        def clock():
            return now[0]

        bar._time = clock
        for _ in range(steps):
            now[0] += step_s
            bar.update(1)
            bar.set_postfix(loss="0.1", refresh=False)
    return stream.getvalue().count("\r")


def test_logged_bar_redraws_rarely(monkeypatch):
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress_bar(total=1, file=io.StringIO()).mininterval == LOGGED_MININTERVAL_S
    # 300 simulated seconds: about one redraw per 30 s, not one per step
    assert _drive(monkeypatch, io.StringIO()) <= 300 / LOGGED_MININTERVAL_S + 3


def test_terminal_bar_keeps_tqdm_default(monkeypatch):
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    monkeypatch.setattr(sys, "stderr", _Tty())
    assert progress_bar(total=1, file=io.StringIO()).mininterval < 1.0
    assert _drive(monkeypatch, _Tty()) > 100


def test_user_setting_wins():
    """tqdm reads TQDM_MININTERVAL once, at import: a fresh interpreter sees the user's value."""
    code = (
        "import io; from padnas.core.progress import progress_bar; "
        "print(progress_bar(total=1, file=io.StringIO()).mininterval)"
    )
    env = {**os.environ, "TQDM_MININTERVAL": "5"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    assert out.strip() == "5.0"

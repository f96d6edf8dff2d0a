"""A supernet trained in another process, beside whatever this one is doing.

The noise ceiling of a search (:mod:`padnas.search.ceiling`) needs a second supernet that differs
from the first only by its seed. On a machine with a core to spare it trains there while the
first trains here: the proxy-sized nets gain nothing from a second thread (``--threads``), so the
second core is otherwise idle. The child is *spawned* (torch and fork do not mix), trains with
the same number of torch threads as this process, whether or not it runs concurrently, so its
weights do not depend on the machine's load, and never touches this process's threads, so the
search's own result is the same with or without it.

The child writes only its checkpoint folder (per-epoch checkpoints, atomic), so a run killed
anywhere continues the training with ``--resume`` (:func:`padnas.train.loop.train_supernet`);
a finished checkpoint is loaded without training. It stops by itself when this process dies.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

from padnas.core.errors import RuntimeFailure, portable_error
from padnas.data.datasets import DataBundle
from padnas.space import SearchSpace
from padnas.train.config import TrainConfig


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _Stopped(Exception):
    """The parent stopped the child (SIGTERM) or died: the child ends, its last checkpoint kept
    and no temporary file left behind (the atomic writes clean up on an exception)."""


def _stop(signum, frame) -> None:
    raise _Stopped


def _child(conn, space: dict, data, config, ckpt_dir, seed, epochs, lr, device, threads) -> None:
    """Train one supernet and send ("ok", seconds) or ("error", exception) back."""
    import torch

    from padnas.train.loop import build_supernet, train_supernet

    signal.signal(signal.SIGTERM, _stop)
    torch.set_num_threads(threads)
    parent = mp.parent_process()

    def watch(step: int, loss: float) -> None:
        if parent is not None and not parent.is_alive():
            raise _Stopped

    t0 = time.perf_counter()
    try:
        net = build_supernet(SearchSpace.from_dict(space), config, data.num_classes, seed)
        train_supernet(
            net,
            data,
            config,
            ckpt_dir,
            seed=seed,
            resume=True,
            epochs=epochs,
            lr=lr,
            device=device,
            progress=False,
            on_step=watch,
        )
        reply = ("ok", round(time.perf_counter() - t0, 1))
    except (KeyboardInterrupt, _Stopped):
        return
    except Exception as exc:  # handed to the parent, which raises it
        reply = ("error", portable_error(exc))
    conn.send(reply)
    conn.close()


class BackgroundTraining:
    """``train_supernet`` of a fresh supernet (``space``, ``config``, ``seed``) into ``ckpt_dir``
    in a spawned process: :meth:`start`, then :meth:`wait` for its seconds; :meth:`stop` (or
    leaving the ``with`` block) ends a child still running."""

    def __init__(
        self,
        space: SearchSpace,
        data: DataBundle,
        config: TrainConfig,
        ckpt_dir: str | Path,
        *,
        seed: int,
        epochs: int,
        lr: float,
        device: str | None = None,
        threads: int = 1,
    ) -> None:
        self.args = (
            space.to_dict(),
            data,
            config,
            Path(ckpt_dir),
            seed,
            epochs,
            lr,
            device,
            max(1, threads),
        )
        self._proc = None
        self._conn = None

    def start(self) -> BackgroundTraining:
        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_child, args=(child_conn, *self.args), name="padnas-twin-supernet"
        )
        self._proc.start()
        child_conn.close()
        return self

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def wait(self) -> float:
        """Block until the training ends; its seconds. The child's error is raised here. An
        interrupt while waiting leaves the child to :meth:`stop`."""
        if self._proc is None:
            raise RuntimeError("wait() before start()")
        try:
            status, value = self._conn.recv()
        except EOFError:
            self._proc.join()
            raise RuntimeFailure(
                f"the second supernet's training process ended without a result "
                f"(exit code {self._proc.exitcode})"
            ) from None
        self._proc.join()
        if status == "error":
            raise value
        return float(value)

    def stop(self) -> None:
        """End the child if it still runs (its last checkpoint stays for a resume)."""
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()

    def __enter__(self) -> BackgroundTraining:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

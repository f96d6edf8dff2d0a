"""One-shot evaluation spread over processes, one per free core.

A CPU search runs one torch thread per process: the proxy's small tensors gain little from a
second thread (``--threads``). While the initial supernet trains, the second core trains the noise
ceiling's twin (:mod:`padnas.train.background`); afterwards it would sit idle through every CES
generation, although one-shot evaluation is about two fifths of the main job's time. An
:class:`EvaluationPool` keeps helper processes, each with a copy of the supernet under search and
its own :class:`~padnas.search.oneshot.OneShotEvaluator` of the same settings and images.
:meth:`EvaluationPool.spread` wraps an evaluator so that each batch of architectures is dealt out
in contiguous runs of their sorted ops (architectures that share a path prefix stay in one
process, where the prefix's outputs are kept) and every process measures its run at the same time;
:meth:`SpreadEvaluator.begin` hands a batch to the helpers alone, leaving this process free (the
search finetunes meanwhile).

An architecture's scores depend only on the weights, the recalibration images and the scored
images, never on the process, the order or which prefixes were kept, so a search returns the same
result with any number of processes, bit for bit (``tests/padnas/search/test_eval_pool.py``).
Helpers are *spawned* (torch and fork do not mix) with this process's threads and deterministic
setting; they end when this process ends, as the twin does. Under ``torchrun`` the DDP ranks
share the evaluations instead (:mod:`padnas.search.sharding`).
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
from collections.abc import Callable, Iterable

import numpy as np

from padnas.core.errors import RuntimeFailure, portable_error
from padnas.search.oneshot import OneShotEvaluator
from padnas.space import Arch

#: helpers at most: each holds a supernet and its own kept prefix outputs (up to the evaluator's
#: prefix_cache_mb), and a CES generation of the quick preset has 16 architectures to share
MAX_PROCESSES = 4


def auto_processes(threads: int, cores: int) -> int:
    """Evaluation processes (this one included) for ``cores`` free cores when each runs
    ``threads`` torch threads: one per ``threads`` cores, at most :data:`MAX_PROCESSES`."""
    return max(1, min(MAX_PROCESSES, cores // max(1, threads)))


def _helper(conn, threads: int, deterministic: bool) -> None:
    """Serve ("measure", supernet or None, arch strings) with ("ok", [(accuracy, log-lik.)])
    or ("error", exception) until the pipe closes."""
    import torch

    from padnas.nn.supernet import Supernet
    from padnas.space import SearchSpace

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    evaluator = None
    try:
        while True:
            try:
                _, load, archs = conn.recv()
            except EOFError:  # the parent closed the pipe or died
                return
            try:
                if load is not None:
                    space, proxy, classes, state, data, settings = load
                    net = Supernet(SearchSpace.from_dict(space), proxy, classes)
                    net.load_state_dict(state)
                    evaluator = OneShotEvaluator(net, data, **settings)
                if evaluator is None:
                    raise RuntimeError("no supernet was handed over before the first batch")
                scores = zip(
                    evaluator.accuracy(archs), evaluator.log_likelihoods(archs), strict=True
                )
                reply = ("ok", [(float(a), float(ll)) for a, ll in scores])
            except Exception as exc:
                reply = ("error", portable_error(exc))
            conn.send(reply)
    except (KeyboardInterrupt, BrokenPipeError):
        # Ctrl-C reaches the whole process group and the parent reports it; a parent that
        # stopped waiting closed the pipe
        return


class _Helper:
    """One helper process and the token of the supernet it holds."""

    def __init__(self, ctx, threads: int, deterministic: bool, index: int) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_helper,
            args=(child, threads, deterministic),
            name=f"padnas-eval-{index}",
            daemon=True,
        )
        self.proc.start()
        child.close()
        self.holds = None  # token of the weights it was last handed

    def send(self, load, archs: list[str]) -> None:
        try:
            self.conn.send(("measure", load, archs))
        except OSError:  # a broken pipe: the helper is gone
            raise self._ended() from None

    def receive(self) -> tuple[str, object]:
        """("ok", scores) or ("error", the helper's exception)."""
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            raise self._ended() from None

    def _ended(self) -> RuntimeFailure:
        self.proc.join(timeout=5)
        return RuntimeFailure(
            f"a one-shot evaluation helper process ended without a result (exit code "
            f"{self.proc.exitcode}); the search's finished generations are on record: rerun "
            "with --resume, adding --eval-processes 1 to evaluate in this process only"
        )

    def stop(self) -> None:
        """End the helper: an idle one leaves at the closed pipe, a busy one is terminated (a
        stop mid-batch comes from an error or an interrupt: its scores are not wanted)."""
        self.conn.close()
        self.proc.join(timeout=1)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


class EvaluationPool:
    """``processes - 1`` helper processes (this process is the first) that
    :meth:`spread` evaluators share their work with; :meth:`stop` (or leaving the ``with`` block)
    ends them."""

    def __init__(self, processes: int, *, threads: int = 1, deterministic: bool = False) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, not {processes}")
        self.processes, self.threads, self.deterministic = processes, threads, deterministic
        self._helpers: list[_Helper] = []
        self._tokens = 0
        self._pending = False  # a batch is out and not yet collected

    def start(self) -> EvaluationPool:
        ctx = mp.get_context("spawn")
        self._helpers = [
            _Helper(ctx, self.threads, self.deterministic, i + 1) for i in range(self.processes - 1)
        ]
        return self

    def stop(self) -> None:
        helpers, self._helpers = self._helpers, []
        self._pending = False
        for helper in helpers:
            helper.stop()

    def __enter__(self) -> EvaluationPool:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def spread(self, evaluator: OneShotEvaluator) -> SpreadEvaluator:
        """``evaluator``'s :meth:`~SpreadEvaluator.accuracy` and
        :meth:`~SpreadEvaluator.log_likelihoods`, measured across this pool. CPU supernets only:
        the helpers compute on the CPU, which rounds differently from an accelerator."""
        device = next(evaluator.supernet.parameters()).device
        if device.type != "cpu":
            raise ValueError(f"an evaluation pool evaluates CPU supernets, not one on {device}")
        return SpreadEvaluator(self, evaluator)

    def _token(self) -> int:
        self._tokens += 1
        return self._tokens


class SpreadEvaluator:
    """An evaluator whose uncached architectures are shared out over an :class:`EvaluationPool`;
    every score lands in the local evaluator's cache, so the results and their order are the
    local evaluator's."""

    def __init__(self, pool: EvaluationPool, local: OneShotEvaluator) -> None:
        self.pool, self.local = pool, local
        self._version = None
        self._token = None

    def accuracy(self, archs: Iterable[Arch | str]) -> np.ndarray:
        archs = list(archs)
        self._deal(archs, here=True)()
        return self.local.accuracy(archs)

    def log_likelihoods(self, archs: Iterable[Arch | str]) -> np.ndarray:
        archs = list(archs)
        self._deal(archs, here=True)()
        return self.local.log_likelihoods(archs)

    def begin(self, archs: Iterable[Arch | str]) -> Callable[[], None]:
        """Hand ``archs`` to the helpers alone and return the function that waits for their
        scores (afterwards :meth:`accuracy` and :meth:`log_likelihoods` of them come from the
        cache): this process is free meanwhile, e.g. to train. Without helpers the function
        measures them here. Until it is called, no other batch may use the pool."""
        return self._deal(list(archs), here=False)

    def _deal(self, archs: list, *, here: bool) -> Callable[[], None]:
        """Send the uncached ``archs`` out in contiguous runs of their sorted ops (the first run
        kept for this process where ``here``); the function that measures this process's run
        and collects the helpers'."""
        local, helpers = self.local, self.pool._helpers
        ordered = sorted(local.unknown(archs), key=lambda a: a.ops)
        if not helpers or not ordered or (here and len(ordered) < 2):
            return lambda: None if here else local.accuracy(ordered)
        if self.pool._pending:
            raise RuntimeError("a batch handed to the evaluation helpers was not collected")
        parts = np.array_split(np.arange(len(ordered)), len(helpers) + here)
        mine = list(parts[0]) if here else []
        version = local.weights_version()
        if version != self._version:
            self._version, self._token = version, self.pool._token()
        busy, handover = [], None
        try:
            for helper, run in zip(helpers, parts[1:] if here else parts, strict=True):
                if not len(run):
                    continue
                load = None
                if helper.holds != self._token:  # built once for all helpers that need it
                    load = handover = handover or self._handover()
                helper.send(load, [str(ordered[i]) for i in run])
                helper.holds = self._token
                busy.append((helper, list(run)))
        except BaseException:
            self.pool.stop()
            raise
        self.pool._pending = True

        def collect() -> None:
            try:
                local.accuracy([ordered[i] for i in mine])
                replies = [(run, helper.receive()) for helper, run in busy]
            except BaseException:
                # a helper's reply may still be on its way: no later batch may read it as its own
                self.pool.stop()
                raise
            self.pool._pending = False
            for _, (status, value) in replies:
                if status == "error":
                    raise value
            local.remember(
                (ordered[i], acc, loglik)
                for run, (_, scores) in replies
                for i, (acc, loglik) in zip(run, scores, strict=True)
            )

        return collect

    def _handover(self) -> tuple:
        """What a helper builds the same evaluator from: the supernet's space, proxy, classes
        and weights, the evaluator's data (without the spare images it no longer needs) and
        settings."""
        net, local = self.local.supernet, self.local
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        data = dataclasses.replace(local.data, spare=None, spare_per_class=0)
        return (net.space.to_dict(), net.proxy, net.num_classes, state, data, local.settings)

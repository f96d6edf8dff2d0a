"""PAD-NAS, Algorithm 1: train, then (search -> op distribution -> prune -> finetune) x (M-2),
then the final search and the choice of architectures across the latency window.

``M`` (``--stages``) picks the method of the paper's ablation: 2 = I-Supernet (train the initial
supernet, search it; no pruning), 3 = P-Supernet (prune once), 4 = PAD-NAS (prune twice). For a
fair comparison every M trains the same total number of epochs (:func:`stage_schedule`).

Every step is a deterministic function of the config and of the files earlier steps left in the
run directory, so a run killed anywhere continues with ``--resume`` and ends exactly as an
uninterrupted run: training resumes from its per-epoch checkpoint (train.py), a stage's CES replays
from the accuracies already measured (ces.py), and pruning is recomputed from the search result.

The noise ceiling (:mod:`padnas.search.ceiling`, when the settings ask for it): a second stage-1
supernet, the same but for its seed, trains in another process beside the first
(:mod:`padnas.train.background`); after the first search, up to N of the architectures it evaluated
are evaluated on the second supernet too, and the summary says how far the two agree. It changes
nothing the search does: its result is the same with or without it.

After the last stage the final models are measured whole on the LUT's device when it can be
reached (:mod:`padnas.run.verify`; ``verify=False`` skips it): ``final.json`` and the summary
then hold measured beside predicted latency. It too changes nothing the search chose.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from latency.lut.model import LatencyModel
from padnas.run.rundir import DAMAGED, EVALUATED, FINAL, SUMMARY, SUMMARY_TEXT, RunDir
from padnas.run.selection import final_notes, select_final
from padnas.run.settings import SearchSettings, method_name
from padnas.run.verify import verify_models
from padnas.search.ceiling import NoiseCeiling, describe, measure_ceiling, spread_by_latency
from padnas.search.ces import Evaluated, SearchResult, StoredRecordError, run_ces
from padnas.search.prune import MAX_RANK, OpDistribution, prune
from padnas.space import Arch, SearchSpace
from padnas.train.config import Stage


@dataclass
class Hooks:
    """Observation points (progress reporting, and tests that kill a run at a chosen moment)."""

    on_train_step: Callable[[int, int, float], None] | None = None  # (stage, step, loss)
    on_generation: Callable[[int, int], None] | None = None  # (stage, generation)
    echo: Callable[[str], None] = field(default=lambda msg: None)


class Pipeline:
    """One PAD-NAS run in one run directory (see :mod:`padnas.run.rundir` for the layout)."""

    def __init__(
        self,
        settings: SearchSettings,
        lut,
        data,
        run: RunDir,
        *,
        hooks: Hooks | None = None,
        progress: bool = True,
        device=None,
        verify: bool = True,
        eval_processes: int = 1,
    ) -> None:
        self.s, self.lut, self.data, self.run = settings, lut, data, run
        # one-shot evaluations of a CPU search shared with helper processes
        # (padnas.search.eval_pool): the same scores, sooner; 1 evaluates in this process only,
        # as does every search off the CPU (the helpers compute on the CPU) or under torchrun
        # (the ranks share the evaluations: padnas.search.sharding)
        self.eval_processes = eval_processes if _on_one_cpu_process(device) else 1
        self._pool = None  # the helpers, from the first evaluation on
        self.verify = verify  # measure the final models whole (padnas.run.verify)
        self.hooks = hooks or Hooks()
        self.progress, self.device = progress, device
        self.results: dict[int, SearchResult] = {}
        self.spaces: dict[int, SearchSpace] = {}
        self.distributions: dict[int, OpDistribution] = {}
        self.ceiling: NoiseCeiling | None = None
        self._twin = None  # the second supernet's training process, while it runs
        self._twin_beside = False  # whether it runs beside the first (on another core)

    # ---- Algorithm 1 ----------------------------------------------------------------------------
    def execute(self) -> dict:
        """Run (or continue) every stage; return the summary."""
        try:
            return self._stages()
        finally:
            if self._twin is not None:  # an error or Ctrl-C: its last checkpoint stays
                self._twin.stop()
            if self._pool is not None:
                self._pool.stop()

    def _stages(self) -> dict:
        from padnas.train.loop import build_supernet

        s, echo = self.s, self.hooks.echo
        M = s.stages
        space = SearchSpace.from_family(s.family)
        sched = s.schedule
        self.spaces[1] = space
        self.run.write_json(RunDir.space_file(1), space.to_dict())
        supernet = build_supernet(space, s.preset, self.data.num_classes, s.seed)
        echo(
            f"stage 1/{M}: train the initial supernet "
            f"({sched[0].epochs} epochs, lr {sched[0].lr:g})"
        )
        self._start_twin(space, sched[0])
        self._start_pool()  # the helpers' interpreters load while the supernet trains
        self._train(1, supernet, sched[0])
        for k in range(2, M):
            result = self._search(k, space, supernet)
            # measured by the evaluation helpers, where there are some, while this finetunes
            ceiling = self._measure_ceiling(k, result)
            dist = OpDistribution.estimate(space, result.archs(max_rank=MAX_RANK))
            pr = prune(dist, s.p_th)
            self.distributions[k] = dist
            self.run.write_json(
                RunDir.distribution_file(k),
                {
                    **dist.to_json(),
                    "max_rank": MAX_RANK,
                    "p_th": s.p_th,
                    "removed": [list(r) for r in pr.removed],
                    "kept_by_rule": list(pr.kept_by_rule),
                },
            )
            self.run.write_json(RunDir.space_file(k), pr.space.to_dict())
            removed = sum(len(r) for r in pr.removed)
            echo(
                f"stage {k}/{M}: pruned {removed} ops; space {space.size:.3g} -> "
                f"{pr.space.size:.3g} architectures"
            )
            space = pr.space
            self.spaces[k] = space
            supernet = supernet.pruned(space)
            stage = sched[k - 1]
            echo(
                f"stage {k}/{M}: finetune the pruned supernet "
                f"({stage.epochs} epochs, lr {stage.lr:g})"
            )
            self._train(k, supernet, stage)
            ceiling()
        result = self._search(M, space, supernet)
        self._measure_ceiling(M, result)()
        self.distributions[M] = OpDistribution.estimate(space, result.archs(max_rank=MAX_RANK))
        return self._finish(result, space)

    def _train(self, k: int, supernet, stage: Stage) -> None:
        from padnas.train.loop import train_supernet

        t0 = time.perf_counter()
        hook = self.hooks.on_train_step
        train_supernet(
            supernet,
            self.data,
            self.s.preset,
            self.run.ckpt_dir(k),
            seed=self.s.seed + 1000 * (k - 1),
            resume=True,
            epochs=stage.epochs,
            lr=stage.lr,
            device=self.device,
            progress=self.progress,
            on_step=None if hook is None else (lambda step, loss: hook(k, step, loss)),
        )
        if not self.run.is_done(f"train-{k}"):
            self.run.mark_done(f"train-{k}", seconds=round(time.perf_counter() - t0, 1))

    # ---- the noise ceiling -----------------------------------------------------------------
    def _start_twin(self, space: SearchSpace, stage: Stage) -> None:
        """Start training the second stage-1 supernet, unless the ceiling needs none (off, not
        rank 0, already measured, already trained). Beside the first when a core is free."""
        import torch

        from padnas.search.ceiling import twin_seed
        from padnas.train.background import BackgroundTraining, available_cores
        from padnas.train.distributed import dist_context, resolve_device

        s = self.s
        if s.ceiling is None or not dist_context().is_main or self.run.is_done("train-1-twin"):
            return
        if self.run.file(RunDir.ceiling_file()).is_file():
            return
        threads = torch.get_num_threads()
        device = resolve_device(self.device)
        beside = device.type != "cpu" or available_cores() >= 2 * threads
        seed = twin_seed(s.seed)
        self._twin = BackgroundTraining(
            space,
            # it only trains: the held-out images (54,000 for Fashion-MNIST) stay in this process
            replace(self.data, spare=None, spare_per_class=0),
            s.preset,
            self.run.twin_ckpt_dir(),
            seed=seed,
            epochs=stage.epochs,
            lr=stage.lr,
            device=str(device),
            threads=threads,
        ).start()
        self._twin_beside = beside
        where = (
            "beside it, in another process"
            if beside
            else f"first (no core free beside {threads} thread(s))"
        )
        self.hooks.echo(
            f"stage 1/{s.stages}: noise ceiling: a second supernet, seed {seed}, trains {where}"
        )
        if not beside:
            self._wait_twin()

    def _wait_twin(self) -> None:
        if self._twin is None:
            return
        seconds = self._twin.wait()
        self._twin = None
        self.run.mark_done("train-1-twin", seconds=seconds, concurrent=self._twin_beside)

    def _load_twin(self):
        """The second supernet, checked: a supernet of the stage-1 space with the twin's seed."""
        from padnas.train.checkpoint import CheckpointError, load_supernet
        from padnas.train.distributed import resolve_device

        path = self.run.twin_ckpt_dir()
        net, meta = load_supernet(path)
        seed = self.s.ceiling_record["seeds"][1]
        if meta.get("seed") != seed or net.space.signature != self.spaces[1].signature:
            raise CheckpointError(
                f"{path} holds another supernet than this run's second one (seed {seed}); {DAMAGED}"
            )
        return net.to(resolve_device(self.device)).eval()

    def _measure_ceiling(self, k: int, result: SearchResult) -> Callable[[], None]:
        """After the first search (stage 2): its architectures, spread along the window, on the
        second supernet with the same recalibration draw; or the measurement on record. Returns
        the function that finishes it (collects the scores, writes and reports the ceiling):
        with evaluation helpers they measure meanwhile, and this process can finetune."""
        from padnas.search.oneshot import OneShotEvaluator
        from padnas.train.distributed import dist_context

        s = self.s
        if k != 2 or s.ceiling is None or not dist_context().is_main:
            return _nothing
        record = s.ceiling_record
        seeds, recal = (record["seeds"][0], record["seeds"][1]), record["recal_seed"]
        rank_by = s.preset.rank_by
        stored = self.run.read_json(RunDir.ceiling_file())
        if stored is not None:
            where = str(self.run.file(RunDir.ceiling_file()))
            self.ceiling = NoiseCeiling.from_json(
                stored, self.spaces[1], seeds, recal, where=where, fix=DAMAGED, rank_by=rank_by
            )
            return _nothing
        self._wait_twin()
        t0 = time.perf_counter()
        recs = result.records
        picks = [
            recs[i]
            for i in spread_by_latency(
                [r.latency_ms for r in recs], [r.arch for r in recs], s.ceiling.archs
            )
        ]
        evaluator = self._spread(
            OneShotEvaluator.from_config(self._load_twin(), self.data, s.preset, seed=recal)
        )
        archs = [r.arch for r in picks]
        beside = self._pool is not None and k < s.stages  # a finetune follows
        collect = evaluator.begin(archs) if beside else _nothing
        here = time.perf_counter() - t0  # this process's share of the time

        def finish() -> None:
            t1 = time.perf_counter()
            collect()
            twin = evaluator.accuracy(archs)
            # both scores, whatever the search ranks by (one pass gives both); records from a
            # search before log-likelihoods were kept have none
            has_ll = all(r.log_likelihood is not None for r in picks)
            self.ceiling = measure_ceiling(
                archs,
                [r.latency_ms for r in picks],
                [r.accuracy for r in picks],
                twin,
                seeds=seeds,
                recal_seed=recal,
                log_likelihood=[r.log_likelihood for r in picks] if has_ll else None,
                twin_log_likelihood=evaluator.log_likelihoods(archs) if has_ll else None,
                rank_by=rank_by,
            )
            self.run.write_json(RunDir.ceiling_file(), self.ceiling.to_json())
            seconds = round(here + time.perf_counter() - t1, 1)
            # beside the finetune: the seconds this process waited, not the helpers' work
            self.run.mark_done("noise-ceiling", seconds=seconds, beside_finetune=beside)
            found = describe(self.ceiling.summary())
            self.hooks.echo(f"noise ceiling of the stage-1 supernet: {found}")

        return finish

    # ---- one-shot evaluation -------------------------------------------------------------------
    def _start_pool(self) -> None:
        """Start the evaluation helpers, where ``eval_processes`` asks for some."""
        import torch

        from padnas.search.eval_pool import EvaluationPool

        if self._pool is not None or self.eval_processes < 2:
            return
        threads, deterministic = torch.get_num_threads(), self.s.deterministic
        self._pool = EvaluationPool(
            self.eval_processes, threads=threads, deterministic=deterministic
        ).start()

    def _spread(self, evaluator):
        """``evaluator`` shared out over the evaluation helpers, where there are some."""
        return evaluator if self._pool is None else self._pool.spread(evaluator)

    def _eval_processes(self) -> int:
        """The processes this run's one-shot evaluations run in (this one and its helpers)."""
        return 1 if self._pool is None else self._pool.processes

    # ---- one stage's search -------------------------------------------------------------------
    def _search(self, k: int, space: SearchSpace, supernet) -> SearchResult:

        from padnas.search.oneshot import OneShotEvaluator
        from padnas.search.sharding import sharded

        s, echo = self.s, self.hooks.echo
        stored = self.run.read_json(RunDir.search_file(k))
        if stored is not None:
            where = str(self.run.file(RunDir.search_file(k)))
            result = SearchResult.from_json(stored, space, s.window, where=where, fix=DAMAGED)
            if result.rank_by != s.preset.rank_by:
                raise StoredRecordError(
                    f"{where} ranked by {result.rank_by}, this run by {s.preset.rank_by}; {DAMAGED}"
                )
            self.results[k] = result
            return result
        t0 = time.perf_counter()
        model = LatencyModel.from_lut(self.lut, space)
        evaluator = self._spread(
            OneShotEvaluator.from_config(supernet, self.data, s.preset, seed=s.seed)
        )
        progress_file = RunDir.ces_log(k)
        known = {}
        where = self.run.file(progress_file)
        for i, row in enumerate(self.run.read_records(progress_file)):
            r = Evaluated.from_json(row, space, where=f"{where}, line {i + 1}", fix=DAMAGED)
            known[r.arch] = (r.accuracy, r.log_likelihood)
        if known:
            echo(f"stage {k}/{self.s.stages}: CES resumes with {len(known)} evaluations on record")
        else:
            echo(f"stage {k}/{self.s.stages}: CES on {space.size:.3g} architectures")
        hook = self.hooks.on_generation

        def on_generation(gen: int, batch: list[Evaluated], fresh: set[str]) -> None:
            self.run.append(progress_file, [r.to_json() for r in batch if r.arch in fresh])
            if hook is not None:
                hook(k, gen)

        result = run_ces(
            space,
            model.predict,
            sharded(evaluator.accuracy),  # shared out among DDP ranks under torchrun
            s.window,
            s.ces,
            seed=s.seed + k,
            log_likelihood=sharded(evaluator.log_likelihoods),  # from the same passes
            rank_by=s.preset.rank_by,
            known=known,
            on_generation=on_generation,
            progress=self.progress,
        )
        self.run.write_json(RunDir.search_file(k), result.to_json(k))
        self.results[k] = result
        self._write_evaluated(k)
        seconds = round(time.perf_counter() - t0, 1)
        self.run.mark_done(f"search-{k}", seconds=seconds, processes=self._eval_processes())
        front, best = result.front(), result.best()
        score = f"one-shot accuracy {best.accuracy:.4f}"
        if result.rank_by == "log_likelihood":
            score = (
                f"one-shot log-likelihood {best.log_likelihood:.4f} (accuracy {best.accuracy:.4f})"
            )
        echo(
            f"stage {k}/{self.s.stages}: {result.evaluations} archs evaluated, {len(front)} on "
            f"the front, best {score} at {best.latency_ms:.2f} ms"
        )
        return result

    def _write_evaluated(self, upto: int) -> None:
        """``evaluated.jsonl`` from the (checked) search results of stages 2..upto."""
        rows = [
            {"stage": k, **r.to_json()} for k in range(2, upto + 1) for r in self.results[k].records
        ]
        self.run.write_records(EVALUATED, rows)

    # ---- the end ------------------------------------------------------------------------------
    def _finish(self, result: SearchResult, space: SearchSpace) -> dict:

        from padnas.nn.complexity import macs_params
        from padnas.run.report import render_summary, write_plots

        s = self.s
        # rewritten from the stage results, so a lost or damaged one is rebuilt on --resume
        self._write_evaluated(s.stages)
        model = LatencyModel.from_lut(self.lut, space)
        picks = select_final(result, s.final_models)
        models = []
        for label, r in zip("ABCDEFGHIJ", picks, strict=False):
            arch = Arch.parse(r.arch)
            macs, params = macs_params(space, arch)
            keys = [key for key, _ in model.breakdown(arch)]
            sources = sorted({model.entries[key]["source"] for key in keys})
            models.append(
                {
                    "label": label,
                    "arch": r.arch,
                    "latency_ms": r.latency_ms,
                    "latency_source": "+".join(sources),
                    "latency_calibrated": bool(model.calibration),
                    "one_shot_accuracy": r.accuracy,
                    "one_shot_log_likelihood": r.log_likelihood,
                    "rank": r.rank,
                    "macs": int(macs),
                    "params": int(params),
                }
            )
        final = {
            "method": method_name(s.stages),
            "window_ms": s.window.to_list(),
            "space": space.to_dict(),
            "lut": s.lut,
            "models": models,
            "notes": final_notes(result, picks, s.final_models),
            "verification": None,
        }
        if self.verify:
            final["models"], final["verification"] = verify_models(
                self.lut, space, models, s.window, progress=self.progress, echo=self.hooks.echo
            )
        self.run.write_json(FINAL, final)
        summary = self.summary(final)
        self.run.write_json(SUMMARY, summary)
        self.run.write_text(SUMMARY_TEXT, render_summary(summary))
        write_plots(self.run, summary, self.results, self.distributions, self.spaces)
        self.run.mark_done("final")
        return summary

    def summary(self, final: dict) -> dict:
        s, state = self.s, self.run.state()["done"]
        stages = []
        sched = s.schedule
        for k in range(1, s.stages + 1):
            entry: dict = {"stage": k}
            if k < s.stages:
                sp = self.spaces[k]
                run = sched[k - 1]
                entry.update(
                    space_size=str(sp.size),
                    space_signature=sp.signature,
                    epochs=run.epochs,
                    lr=run.lr,
                    train_seconds=state.get(f"train-{k}", {}).get("seconds"),
                )
            if k in self.results:
                res = self.results[k]
                entry.update(
                    evaluations=res.evaluations,
                    front=len(res.front()),
                    counted_for_distribution=sum(r.rank < MAX_RANK for r in res.records),
                    search_seconds=state.get(f"search-{k}", {}).get("seconds"),
                    # the processes its one-shot evaluations ran in (null: recorded before)
                    eval_processes=state.get(f"search-{k}", {}).get("processes"),
                    notes=res.notes,
                )
            if 1 < k < s.stages:
                entry["pruned_ops"] = sum(
                    a - b
                    for a, b in zip(self.spaces[k - 1].num_ops, self.spaces[k].num_ops, strict=True)
                )
            stages.append(entry)
        return {
            "method": method_name(s.stages),
            "config": s.to_config(),
            "stages": stages,
            "final": final["models"],
            "final_notes": final["notes"],
            "noise_ceiling": self._ceiling_block(final["models"]),
            "verification": final["verification"],
        }

    def _ceiling_block(self, models: list[dict]) -> dict | None:
        """The ``noise_ceiling`` block of the summary (None when not measured), with the cost
        of measuring it from the run's bookkeeping."""
        from padnas.search.oneshot import held_out_images

        if self.ceiling is None:
            return None
        images = held_out_images(self.s.preset, self.data)
        state = self.run.state()["done"]
        twin = state.get("train-1-twin", {})
        return {
            **self.ceiling.summary(models),
            "twin_train_seconds": twin.get("seconds"),
            "twin_concurrent": twin.get("concurrent"),
            "eval_seconds": state.get("noise-ceiling", {}).get("seconds"),
            # measured by evaluation helpers while the first finetune trained (eval_seconds:
            # what this process waited for them)
            "eval_beside_finetune": bool(state.get("noise-ceiling", {}).get("beside_finetune")),
            # what one-shot accuracy was measured on: the held-out images, or the val split
            "eval_images": images or len(self.data.val),
            "eval_split": "holdout" if images else "val",
        }


def _on_one_cpu_process(device) -> bool:
    """Whether a search on ``device`` runs on the CPU in one process (no torchrun ranks)."""
    from padnas.train.distributed import dist_context, resolve_device

    return resolve_device(device).type == "cpu" and dist_context().world_size == 1


def _nothing() -> None:
    """What finishes a step that needs no finishing."""

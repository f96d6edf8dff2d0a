"""The run directory of ``padnas search``: what a progressive search leaves on disk.

Layout (every whole file written atomically; logs are append-only JSON lines)::

    RUN_DIR/
      config.json              everything that determines the result (checked on --resume),
                               and the platform the run started on (CPU, kernels, threads)
      state.json               finished steps, stage timings (bookkeeping, not part of the result)
      stage-1/space.json       the initial layer-wise space; stage-1/ckpt/ the initial supernet
      stage-1/twin/ckpt/       the noise ceiling's second supernet (the same but for its seed)
      stage-1/noise_ceiling.json  both supernets' accuracies on the first search's archs
      stage-k/ces.jsonl        CES progress, one record per evaluated arch (resume memo)
      stage-k/search.json      the finished CES of stage k: every evaluated arch, ranked
      stage-k/distribution.json, stage-k/space.json, stage-k/ckpt/   (k = 2..M-1: prune, finetune)
      evaluated.jsonl          every evaluated arch of every stage (stage, generation, rank)
      final.json               the selected architectures
      summary.json, summary.txt, pareto.png, op_heatmap.png, space_size.png

A run killed anywhere resumes from these files; ``--resume`` refuses a directory whose config
differs from the requested one, and a fresh run refuses a non-empty directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from padnas.core import (
    append_jsonl,
    atomic_write_json,
    atomic_write_text,
    check_schema,
    make_dir,
    read_json,
    read_jsonl,
)
from padnas.core.errors import FileFormatError, UsageError

# Every name in the layout above, spelt once (whole-run files; stage files are RunDir methods).
CONFIG = "config.json"
STATE = "state.json"
EVALUATED = "evaluated.jsonl"
FINAL, SUMMARY, SUMMARY_TEXT = "final.json", "summary.json", "summary.txt"
PLOTS = {"pareto": "pareto.png", "op_heatmap": "op_heatmap.png", "space_size": "space_size.png"}
RUN_FORMAT = 1
#: config.json's record of the machine a run started on (not compared on --resume)
PLATFORM = "platform"
#: config.json's key for the deterministic mode (a run never mixes modes)
DETERMINISTIC = "deterministic"
#: the preset values a run from before each option ran with: the validation split
#: (eval_images), accuracy (rank_by), uniform paths (sampler), the deployed strides
#: (dropped_strides)
PRESET_BEFORE = {
    "eval_images": 0,
    "rank_by": "accuracy",
    "sampler": "uniform",
    "dropped_strides": 0,
}
#: the fix named when a run-directory file is damaged
DAMAGED = "the run directory is damaged: start a new run with another --out"
#: the fix named when a result file of a finished run is damaged
REBUILD = "padnas search ... --resume (same options) rebuilds it from the stage files"


class RunDirError(UsageError):
    """A run directory that cannot be used for the requested run (exit code 2)."""


#: the result files of a finished run, made again from the stage files by ``--resume``
RESULTS = (EVALUATED, FINAL, SUMMARY, SUMMARY_TEXT, *PLOTS.values())


def _is_file(path: Path, fix: str) -> bool:
    """True for a file, False for nothing there; a folder (or a FIFO, a dangling link...) in
    the place of a run-directory file is refused before anything reads or writes it."""
    if path.is_file():
        return True
    if not path.exists() and not path.is_symlink():
        return False
    raise RunDirError(f"{path} is not a file: move what is there out of the run directory; {fix}")


def _diff(saved: Any, wanted: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON values differ (first few are enough for a message)."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        out = []
        for key in sorted(set(saved) | set(wanted)):
            out += _diff(saved.get(key), wanted.get(key), f"{prefix}{key}.")
        return out
    if saved != wanted:
        return [f"{prefix.rstrip('.')} ({_short(saved)} vs {_short(wanted)})"]
    return []


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def refuse_inside_run(path: str | Path, option: str) -> None:
    """Refuse an output folder that is, or lies inside, a search run directory: its files
    (the supernet checkpoints above all) belong to that run, and a training writing there
    would replace them. A run directory is recognised by its ``config.json`` and ``stage-1``."""
    folder = Path(path).absolute()
    for d in (folder, *folder.parents):
        if (d / CONFIG).is_file() and (d / "stage-1").is_dir():
            raise RunDirError(
                f"{option} {path}: the folder belongs to the search run in {d}; "
                f"choose a folder outside it"
            )


class RunDir:
    """Paths and crash-safe bookkeeping of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # ---- opening ------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: str | Path, config: dict, *, resume: bool, platform: dict | None = None
    ) -> RunDir:
        """Start a run in ``path`` or continue the one there; refuses mismatches (RunDirError).
        Everything is checked (:meth:`check`) before the first byte is written. A new run's
        ``config.json`` also records ``platform`` (what it computes with: CPU, kernels,
        libraries, threads), which is not compared on ``--resume``."""
        run = cls.check(path, config, resume=resume)
        if run.config() is None:
            make_dir(run.path, "--out")
            extra = {} if platform is None else {PLATFORM: platform}
            atomic_write_json(run.path / CONFIG, {"format": RUN_FORMAT, **config, **extra})
        return run

    @classmethod
    def check(cls, path: str | Path, config: dict, *, resume: bool) -> RunDir:
        """Everything :meth:`open` would refuse, refused without writing anything: a file in
        the way, a used directory without ``--resume``, ``--resume`` where there is no run, a
        damaged or newer ``config.json``, a run of another configuration."""
        run = cls(path)
        config = {"format": RUN_FORMAT, **config}
        if run.path.exists() and not run.path.is_dir():
            raise RunDirError(f"{run.path} exists and is not a directory: choose another --out")
        used = run.path.is_dir() and any(run.path.iterdir())
        if resume and not used:
            state = "is empty" if run.path.is_dir() else "does not exist"
            raise RunDirError(
                f"--resume: {run.path} {state}, so there is no run to continue; "
                "drop --resume to start one there"
            )
        if used:
            if not resume:
                raise RunDirError(
                    f"{run.path} is not empty: pass --resume to continue the run in it, "
                    "or choose another --out"
                )
            saved = run.config()
            run.state()  # a damaged state.json is refused before anything is written
            for name in RESULTS:  # --resume rewrites these: nothing may be in their way
                _is_file(run.path / name, REBUILD)
            if saved is None:
                raise RunDirError(
                    f"{run.path} holds no {CONFIG}: it is not a padnas run directory; "
                    "choose another --out"
                )
            # a run from before the deterministic mode ran without it
            was = bool(saved.get(DETERMINISTIC, False))
            # the platform is a record, not a setting
            saved = {k: v for k, v in saved.items() if k not in (PLATFORM, DETERMINISTIC)}
            if isinstance(saved.get("preset"), dict):
                saved["preset"] = saved_preset(saved)
            if was != bool(config.get(DETERMINISTIC, False)):
                how = "with" if was else "without"
                raise RunDirError(
                    f"{run.path} was run {how} --deterministic and a run cannot mix modes: "
                    f"resume it {how} --deterministic, or choose another --out"
                )
            # compare as JSON (tuples vs lists, int vs float keys) to avoid false mismatches
            wanted = json.loads(json.dumps(config))
            wanted.pop(DETERMINISTIC, None)
            diffs = _diff(saved, wanted)
            if diffs:
                raise RunDirError(
                    f"{run.path} holds a run of another configuration ({'; '.join(diffs[:3])}); "
                    "resume it with its own settings or choose another --out"
                )
        return run

    def config(self) -> dict | None:
        """The saved config (None when there is none); damaged or newer ones are refused."""
        p = self.path / CONFIG
        if not _is_file(p, DAMAGED):
            return None
        saved = read_json(p, expect=dict, fix=DAMAGED)
        check_schema(saved.get("format"), RUN_FORMAT, str(p), field="format", fix=DAMAGED)
        return saved

    # ---- paths --------------------------------------------------------------------------------
    def stage_dir(self, k: int) -> Path:
        d = self.path / f"stage-{k}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def ckpt_dir(self, k: int) -> Path:
        return self.stage_dir(k) / "ckpt"

    def twin_ckpt_dir(self) -> Path:
        """The noise ceiling's second stage-1 supernet (search.ceiling): another seed."""
        return self.stage_dir(1) / "twin" / "ckpt"

    def file(self, name: str) -> Path:
        return self.path / name

    @staticmethod
    def ceiling_file() -> str:
        """The noise ceiling: both stage-1 supernets' accuracies on the same architectures."""
        return "stage-1/noise_ceiling.json"

    @staticmethod
    def space_file(k: int) -> str:
        """Stage ``k``'s layer-wise space (stage 1: the initial one; k > 1: after pruning)."""
        return f"stage-{k}/space.json"

    @staticmethod
    def distribution_file(k: int) -> str:
        """Stage ``k``'s op distribution over the archs of rank < MAX_RANK."""
        return f"stage-{k}/distribution.json"

    @staticmethod
    def search_file(k: int) -> str:
        """Stage ``k``'s finished CES: every evaluated arch, ranked."""
        return f"stage-{k}/search.json"

    @staticmethod
    def ces_log(k: int) -> str:
        """Stage ``k``'s CES progress, one record per evaluated arch (the resume memo)."""
        return f"stage-{k}/ces.jsonl"

    # ---- state --------------------------------------------------------------------------------
    def state(self) -> dict:
        p = self.path / STATE
        if not _is_file(p, DAMAGED):
            return {"done": {}}
        state = read_json(p, expect=dict, fix=DAMAGED)
        if not isinstance(state.get("done"), dict):
            raise RunDirError(f"{p}: has no 'done' object; {DAMAGED}")
        return state

    def mark_done(self, step: str, **info: Any) -> None:
        state = self.state()
        state["done"][step] = info
        atomic_write_json(self.path / STATE, state)

    def is_done(self, step: str) -> bool:
        return step in self.state()["done"]

    # ---- JSON helpers -------------------------------------------------------------------------
    def write_json(self, rel: str | Path, obj: Any) -> Path:
        p = self.path / rel
        atomic_write_json(p, obj)
        return p

    def read_json(self, rel: str | Path) -> Any | None:
        p = self.path / rel
        if not p.is_file():
            return None
        return read_json(p, fix=DAMAGED)

    def write_text(self, rel: str | Path, text: str) -> Path:
        p = self.path / rel
        atomic_write_text(p, text)
        return p

    def append(self, rel: str | Path, records: Iterable[dict]) -> None:
        append_jsonl(self.path / rel, records)

    def read_records(self, rel: str | Path) -> list[dict]:
        return list(read_jsonl(self.path / rel))

    def write_records(self, rel: str | Path, records: Iterable[dict]) -> Path:
        """Replace a JSON-lines file as a whole (atomic: readers never see half of it)."""
        lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        return self.write_text(rel, lines)

    def unmark(self, step: str) -> None:
        """Forget a finished step (its output is gone and will be made again)."""
        state = self.state()
        if state["done"].pop(step, None) is not None:
            atomic_write_json(self.path / STATE, state)


# ---- reading a run directory: show, export and --resume -------------------------------------


class LoadedRun:
    """A run directory read for ``show``, ``export`` and ``--resume``: every file it needs is
    checked on the way in and a damaged or missing one is named, with what to do about it.

    Only the files a command needs are read: ``final`` for ``export``, ``summary_text`` (which
    also checks ``final.json`` and ``summary.json``: a summary without its result is not shown)
    for ``show``; a missing or damaged one raises :class:`RunDirError`."""

    def __init__(self, path: str | Path) -> None:
        self.run = RunDir(path)
        if not self.run.path.is_dir():
            raise RunDirError(f"no run directory at {self.run.path}")
        config = self.run.config()
        if config is None:
            raise RunDirError(f"{self.run.path} is not a padnas run directory (no {CONFIG})")
        stages = config.get("stages")
        texts = (config.get("method"), config.get("space"))
        if (
            isinstance(stages, bool)
            or not isinstance(stages, int)
            or not 2 <= stages <= 64
            or not all(isinstance(t, str) for t in texts)
        ):
            raise RunDirError(
                f"{self.run.path / CONFIG}: no valid 'stages', 'method' or 'space'; {DAMAGED}"
            )
        self.config = config
        self.done = self.run.state()["done"]

    @property
    def finished(self) -> bool:
        return "final" in self.done

    def final(self) -> dict:
        """``final.json`` of a finished run, checked: ``{space: {family, layer_ops}, models:
        [{label, arch, one_shot_accuracy, latency_ms}]}`` (see :meth:`_check_models`)."""
        p = self.run.path / FINAL
        if not self.finished:
            raise RunDirError(f"{self.run.path} has no {FINAL}: the search has not finished")
        if not _is_file(p, REBUILD):
            raise RunDirError(f"{p} is missing from a finished run; {REBUILD}")
        data = self._read(FINAL)
        models, space = data.get("models"), data.get("space")
        ok = (
            isinstance(models, list)
            and all(
                isinstance(m, dict)
                and isinstance(m.get("label"), str)
                and isinstance(m.get("arch"), str)
                for m in models
            )
            and isinstance(space, dict)
            and isinstance(space.get("family"), str)
        )
        if not ok:
            raise RunDirError(
                f"{p} is damaged (no models with label and arch, or no space); {REBUILD}"
            )
        self._check_models(p, models, self._space(p, space))
        return data

    @staticmethod
    def _space(where: Path, data: object):
        """The :class:`SearchSpace` stored in a run-directory file, checked."""
        from padnas.space import SearchSpace

        fix = REBUILD if where.name == FINAL else DAMAGED
        if not isinstance(data, dict):
            raise RunDirError(f"{where} holds no search space; {fix}")
        try:
            return SearchSpace.from_dict(data)
        except (ValueError, TypeError) as exc:
            raise RunDirError(f"{where}: the search space is not valid ({exc}); {fix}") from None

    @staticmethod
    def _check_models(where: Path, models: list[dict], space) -> None:
        """The selected models, checked like input: distinct labels, archs of the run's final
        space, one-shot accuracy in [0, 1], log-likelihood (when given) <= 0, latency finite and
        positive."""
        from padnas.search.ces import check_accuracy, check_latency, check_log_likelihood

        if len({m["label"] for m in models}) != len(models):
            raise RunDirError(f"{where} gives a model label twice; {REBUILD}")
        for m in models:
            what = f"{where}: model {m['label'][:20]!r}"
            try:
                space.validate(m["arch"])
            except ValueError as exc:
                raise RunDirError(f"{what}: {exc}; {REBUILD}") from None
            check_accuracy(m.get("one_shot_accuracy"), f"{what}: one_shot_accuracy", REBUILD)
            if m.get("one_shot_log_likelihood") is not None:
                where_ll = f"{what}: one_shot_log_likelihood"
                check_log_likelihood(m["one_shot_log_likelihood"], where_ll, REBUILD)
            check_latency(m.get("latency_ms"), f"{what}: latency_ms", REBUILD)
            if "measured_ms" in m:  # measured whole after the search (padnas.run.verify)
                check_latency(m["measured_ms"], f"{what}: measured_ms", REBUILD)

    def evaluated(self) -> list[dict]:
        """``evaluated.jsonl`` of a finished run, every line checked against the space its
        stage searched (:meth:`padnas.search.ces.Evaluated.from_json`)."""
        from padnas.search.ces import Evaluated

        p = self.run.path / EVALUATED
        if not _is_file(p, REBUILD):
            raise RunDirError(f"{p} is missing from a finished run; {REBUILD}")
        stages = self.config["stages"]
        spaces = {}  # stage k searched the space stage k - 1 left (stage 1: the initial one)
        for k in range(2, stages + 1):
            rel = RunDir.space_file(k - 1)
            spaces[k] = self._space(self.run.path / rel, self._read_stage(rel))
        try:
            rows = self.run.read_records(EVALUATED)
        except FileFormatError as exc:
            raise RunDirError(f"{exc}; {REBUILD}") from None
        for i, row in enumerate(rows, 1):
            stage = row.get("stage") if isinstance(row, dict) else None
            if type(stage) is not int or stage not in spaces:  # a list is no stage (nor hashable)
                raise RunDirError(f"{p}, line {i}: no stage in 2..{stages}; {REBUILD}")
            record = {k: v for k, v in row.items() if k != "stage"}
            Evaluated.from_json(record, spaces[stage], where=f"{p}, line {i}", fix=REBUILD)
        return rows

    def check_stages(self) -> None:
        """Every stage result ``--resume`` reads back (``stage-K/search.json`` and
        ``stage-K/ces.jsonl``), checked against the space its stage searched before anything
        is written: a forged or damaged one is refused with the run directory as it was."""
        from padnas.search.ces import Evaluated, stored_search

        for k in range(2, self.config["stages"] + 1):
            search, log = RunDir.search_file(k), RunDir.ces_log(k)
            has_search = _is_file(self.run.path / search, DAMAGED)
            if not has_search and not _is_file(self.run.path / log, DAMAGED):
                continue
            rel = RunDir.space_file(k - 1)
            space = self._space(self.run.path / rel, self._read_stage(rel))
            if has_search:
                where = str(self.run.path / search)
                stored_search(self._read_stage(search), space, where=where, fix=DAMAGED)
            for i, row in enumerate(self.run.read_records(log), 1):
                where = f"{self.run.path / log}, line {i}"
                Evaluated.from_json(row, space, where=where, fix=DAMAGED)
        self._check_ceiling()

    def _check_ceiling(self) -> None:
        """The noise ceiling on record (``stage-1/noise_ceiling.json``), when the run measures
        one: this run's seeds, archs of the stage-1 space, accuracies in [0, 1]."""
        from padnas.search.ceiling import NoiseCeiling

        block, rel = self.config.get("noise_ceiling"), RunDir.ceiling_file()
        if not isinstance(block, dict) or not _is_file(self.run.path / rel, DAMAGED):
            return
        space = self._space(
            self.run.path / RunDir.space_file(1), self._read_stage(RunDir.space_file(1))
        )
        seeds = block.get("seeds") or [None, None]
        NoiseCeiling.from_json(
            self._read_stage(rel),
            space,
            (seeds[0], seeds[1]),
            block.get("recal_seed"),
            where=str(self.run.path / rel),
            fix=DAMAGED,
            rank_by=_rank_by(self.config),
        )

    def _read_stage(self, rel: str) -> dict:
        p = self.run.path / rel
        if not _is_file(p, DAMAGED):
            raise RunDirError(f"{p} is missing; {DAMAGED}")
        try:
            return read_json(p, expect=dict, fix=DAMAGED)
        except FileFormatError as exc:
            raise RunDirError(str(exc)) from None

    def summary_text(self) -> str:
        """``summary.txt`` of a finished run, after checking the files it summarises."""
        final = self.final()
        self.evaluated()
        for name in (SUMMARY, SUMMARY_TEXT):
            if not _is_file(self.run.path / name, REBUILD):
                raise RunDirError(
                    f"{self.run.path / name} is missing from a finished run; {REBUILD}"
                )
        if self._read(SUMMARY).get("final") != final["models"]:
            raise RunDirError(
                f"{self.run.path / SUMMARY} does not list the models of {FINAL}; {REBUILD}"
            )
        try:
            return (self.run.path / SUMMARY_TEXT).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise RunDirError(f"{self.run.path / SUMMARY_TEXT} is damaged; {REBUILD}") from None

    def summary(self) -> dict:
        """``summary.json`` of a finished run, checked as :meth:`summary_text` checks it."""
        self.summary_text()
        return self._read(SUMMARY)

    def damage(self) -> str | None:
        """What is missing or damaged among a finished run's result files (None: nothing);
        ``--resume`` rebuilds them from the stage files. Damage it cannot rebuild (a stage
        file) is raised."""
        from padnas.search.ces import StoredRecordError

        try:
            self.summary_text()
        except (RunDirError, StoredRecordError) as exc:
            if not str(exc).endswith(REBUILD):
                raise
            return str(exc)[: -len(REBUILD)].rstrip("; ")
        return None

    def _read(self, name: str) -> dict:
        try:
            return read_json(self.run.path / name, expect=dict, fix=REBUILD)
        except FileFormatError as exc:
            raise RunDirError(str(exc)) from None


def saved_preset(config: dict) -> dict | None:
    """A saved run's preset, with :data:`PRESET_BEFORE`'s value for each field it predates;
    None without a preset."""
    preset = config.get("preset")
    return {**PRESET_BEFORE, **preset} if isinstance(preset, dict) else None


def _rank_by(config: dict) -> str:
    """What a saved run's search ranks by."""
    preset = saved_preset(config)
    return preset["rank_by"] if preset is not None else PRESET_BEFORE["rank_by"]

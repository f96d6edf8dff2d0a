"""One run directory for every DDP rank.

Only rank 0 writes the run directory. The other ranks work in a private copy of it taken at
start (so that a resumed run resumes identically everywhere): if they read the shared directory
while rank 0 writes it, a rank could find a stage already finished and skip the collective calls
the others wait in.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import torch.distributed as dist

from padnas.run.rundir import RunDir
from padnas.train.distributed import DistContext


def open_run(
    path: str | Path, config: dict, *, resume: bool, ctx: DistContext, platform: dict | None = None
) -> RunDir:
    """The run directory this rank works in: ``path`` itself on rank 0, a private copy elsewhere.

    Rank 0 opens (or refuses) the directory first; its verdict reaches every rank, so a refused
    ``--resume`` stops all of them with the same message instead of leaving them waiting.
    """
    if ctx.world_size == 1:
        return RunDir.open(path, config, resume=resume, platform=platform)
    verdict: list = [None]
    run = None
    if ctx.is_main:
        try:
            run = RunDir.open(path, config, resume=resume, platform=platform)
        except Exception as exc:  # handed to the other ranks, then raised here
            verdict[0] = exc
    dist.broadcast_object_list(verdict, src=0)
    if verdict[0] is not None:
        raise verdict[0]
    if run is None:
        private = Path(tempfile.mkdtemp(prefix=f"padnas-rank{ctx.rank}-"))
        atexit.register(shutil.rmtree, private, ignore_errors=True)
        shutil.copytree(path, private, dirs_exist_ok=True)
        run = RunDir.open(private, config, resume=True)
    dist.barrier()  # rank 0 writes nothing new until every copy is taken
    return run

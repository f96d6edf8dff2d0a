"""The ``padnas`` command group: every command is a thin click layer over functions that return
values; expected errors are one line and an exit code (:mod:`padnas.core.cli`). Heavy imports
(torch, data) happen inside the commands, so ``--help`` is fast."""

from __future__ import annotations

import click

from padnas import __version__
from padnas.cli.evaluate import evaluate
from padnas.cli.runs import export, show
from padnas.cli.search import search
from padnas.cli.space import space
from padnas.cli.training import supernet, train
from padnas.core.cli import CommandGroup


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="padnas")
def main() -> None:
    """PAD-NAS: progressive search-space design for hardware-aware one-shot NAS."""


for _command in (space, supernet, evaluate, train, search, show, export):
    main.add_command(_command)

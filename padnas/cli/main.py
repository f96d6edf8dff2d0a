"""The ``padnas`` command group: every command is a thin click layer over functions that return
values; expected errors are one line and an exit code (:mod:`padnas.core.cli`). Heavy imports
(torch, data) happen inside the commands, so ``--help`` is fast."""

from __future__ import annotations

import sys

import click

from padnas import __version__
from padnas.cli.evaluate import evaluate
from padnas.cli.options import relaunch_deterministic
from padnas.cli.runs import export, show
from padnas.cli.search import search
from padnas.cli.space import space
from padnas.cli.training import supernet, train
from padnas.core.cli import CommandGroup


class PadnasGroup(CommandGroup):
    """The group of the ``padnas`` entry point: a command line with ``--deterministic`` is run
    again in the pinned CPU environment before anything loads torch (see
    :func:`padnas.cli.options.relaunch_deterministic`). Arguments handed in by a caller
    (``main(args)``, a test runner) are parsed in this process as they are."""

    def main(self, args=None, *rest, **kw):
        if args is None:
            relaunch_deterministic(sys.argv[1:])
        return super().main(args, *rest, **kw)


@click.group(cls=PadnasGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="padnas")
def main() -> None:
    """PAD-NAS: progressive search-space design for hardware-aware one-shot NAS."""


for _command in (space, supernet, evaluate, train, search, show, export):
    main.add_command(_command)

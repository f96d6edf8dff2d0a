"""The ``--space`` option: the one list of space names that every command line offers."""

from __future__ import annotations

import click

from padnas.space.macro import MACROS


class SpaceChoice(click.Choice):
    """The one list of search spaces every ``--space`` option accepts; an unknown name fails
    with the same words as :class:`padnas.space.SpaceError`."""

    def __init__(self) -> None:
        super().__init__(sorted(MACROS))

    def convert(self, value, param, ctx):
        if value in MACROS:
            return value
        self.fail(f"unknown space {value!r}: choose one of {', '.join(MACROS)}", param, ctx)


SPACE_CHOICE = SpaceChoice()
SPACE_HELP = "Search space: basic or large (Table 2), or v3 (MobileNetV3-based, Table 4)."


def space_option(*decls: str, **kw):
    """``--space`` (-s when asked), always the same choice list."""
    kw.setdefault("help", SPACE_HELP)
    return click.option("--space", *decls, type=SPACE_CHOICE, **kw)

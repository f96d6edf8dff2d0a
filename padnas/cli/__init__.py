"""The ``padnas`` command line (entry point ``padnas.cli:main``; ``python -m padnas.cli`` for
torchrun)."""

from padnas.cli.main import main

__all__ = ["main"]

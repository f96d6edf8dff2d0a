"""``padnas-latency``: the click layer over profiling, LUTs, networks and the transfer estimate."""

from latency.cli.app import main

__all__ = ["main"]

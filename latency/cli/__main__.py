"""``python -m latency.cli``: the ``padnas-latency`` command."""

from latency.cli.app import main

main()

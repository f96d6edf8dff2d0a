"""PAD-NAS: progressive automatic design of the search space for one-shot NAS."""

__version__ = "0.1.0"

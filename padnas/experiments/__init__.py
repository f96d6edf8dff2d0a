"""Experiments behind the paper's evidence, used by ``benchmarks/``: stand-alone training of many
architectures with a cache (:mod:`.standalone`) and the baseline searches (:mod:`.baselines`).
"""

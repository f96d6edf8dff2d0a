"""Architecture latencies per second from a LUT: vectorised LatencyModel vs a per-arch loop.

    python benchmarks/lut_throughput.py                       # mock LUT of the large space
    python benchmarks/lut_throughput.py --lut host-large.json --n 2000000

Target (issue 3): >= 1,000,000 architectures per second.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from padnas.space import SPACE_NAMES, get_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lut", default=None, help="LUT JSON [default: the mock device's, in memory]")
    ap.add_argument("--space", default="large", choices=SPACE_NAMES)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()

    from latency.backends.mock import MockBackend
    from latency.devices import load_profile
    from latency.lut.model import LatencyModel
    from latency.lut.table import Lut, load_lut
    from latency.variants import arch_keys, space_variants

    space = get_space(a.space)
    if a.lut:
        lut = load_lut(a.lut, a.space)
    else:
        mock = MockBackend(load_profile("mock"))
        entries = {}
        for v in space_variants(space):
            e = mock.measure_variant(v).to_dict()
            entries[v.key] = {k: e[k] for k in ("ms", "p10", "p90", "n", "source")}
        lut = Lut({"name": "mock"}, space.family, space.family_signature, 224, entries)
    t0 = time.perf_counter()
    model = LatencyModel.from_lut(lut, space)
    build_s = time.perf_counter() - t0
    genomes = space.sample_genomes(np.random.default_rng(0), a.n)

    rates = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        fast = model.predict(genomes)
        rates.append(a.n / (time.perf_counter() - t0))

    # the straightforward way: decode each genome, look up each key, sum
    m = 2000
    t0 = time.perf_counter()
    slow = [
        lut.calibrate(sum(lut.ms(k) for k in arch_keys(space, space.decode(g), lut.resolution)))
        for g in genomes[:m]
    ]
    loop_rate = m / (time.perf_counter() - t0)
    assert np.allclose(slow, fast[:m]), "vectorised and per-arch sums disagree"

    t0 = time.perf_counter()
    archs = [space.decode(g) for g in genomes[:20000]]
    decode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.predict(archs)
    arch_rate = len(archs) / (time.perf_counter() - t0)

    print(f"lut: {a.lut or 'mock (in memory)'}; space {a.space}; n {a.n}")
    print(f"model_build_s: {build_s:.4f}")
    print(f"vectorised_genomes_per_s_median: {np.median(rates):.0f}")
    print(f"vectorised_genomes_per_s_min: {np.min(rates):.0f}")
    print(f"arch_objects_per_s: {arch_rate:.0f}  (encode included; decode took {decode_s:.2f} s)")
    print(f"per_arch_loop_per_s: {loop_rate:.0f}")
    print(f"speedup_vs_loop: {np.median(rates) / loop_rate:.0f}")
    print(f"target_1e6_ratio: {np.median(rates) / 1e6:.2f}")


if __name__ == "__main__":
    main()

"""int8 against fp32 latency per op class, from one device's two stores, and the int8 check's
errors: what the int8 table changes, and how faithful its files are.

    python benchmarks/lut_build.py --space basic --precision int8 --keep /tmp/i8   # cold, timed
    PADNAS_CACHE=/tmp/i8 padnas-latency profile --device host --space basic        # fp32 beside
    python benchmarks/int8_ratio.py --cache /tmp/i8 --space basic

Both tables are read from the stores as ``export-lut`` writes them (every entry measured, none
regressed: the script refuses otherwise). The classes: the stem, the head, and the inverted
bottlenecks by kernel, expansion and stride. Each row: the median int8/fp32 ratio with its
range over the class's shapes. The two tables' guard reference times are printed, and the int8
entries are brought to the fp32 table's reference before the ratios are taken (the same fixed
op timed with both tables says how fast the machine ran for each).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from latency.devices import load_profile  # noqa: E402
from latency.export.quantize import INT8_TOLERANCE  # noqa: E402
from latency.profiling.profile import stored_lut  # noqa: E402
from latency.variants import Variant  # noqa: E402
from padnas.space import SPACE_NAMES, get_space  # noqa: E402


def op_class(key: str) -> str:
    v = Variant.from_key(key)
    if v.kind != "ibconv":
        return v.kind
    return f"ibconv k{v.kernel} e{v.exp_ratio} s{v.stride}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=None, help="[default: $PADNAS_CACHE]")
    ap.add_argument("--space", default="basic", choices=SPACE_NAMES)
    ap.add_argument("--device", default="host")
    ap.add_argument("--resolution", type=int, default=224)
    a = ap.parse_args()
    if a.cache is not None:
        os.environ["PADNAS_CACHE"] = str(a.cache)
    profile, space = load_profile(a.device), get_space(a.space)
    luts = {
        p: stored_lut(profile, space, resolution=a.resolution, precision=p, fill=False)
        for p in ("fp32", "int8")
    }
    for p, lut in luts.items():
        prov = lut.provenance
        print(
            f"{p}: {len(lut.entries)} entries measured, guard reference {prov['reference_ms']} ms, "
            f"conditions {prov['conditions']}"
        )
    # the two stores were measured at (slightly) different machine speeds: the guard's reference
    # op says how much, and the int8 entries are brought to the fp32 table's reference
    refs = {p: lut.provenance.get("reference_ms") for p, lut in luts.items()}
    to_fp32 = refs["fp32"] / refs["int8"] if all(refs.values()) else 1.0
    print(f"int8 entries scaled by {to_fp32:.4f} to the fp32 table's reference time")
    by_class = defaultdict(list)
    for key, entry in luts["fp32"].entries.items():
        by_class[op_class(key)].append(luts["int8"].ms(key) * to_fp32 / entry["ms"])
    print()
    print(f"{'op class':<22} {'n':>3}  int8/fp32 median  range")
    for cls in sorted(by_class):
        r = by_class[cls]
        print(f"{cls:<22} {len(r):>3}  {statistics.median(r):>16.3f}  {min(r):.3f}-{max(r):.3f}")
    every = [x for r in by_class.values() for x in r]
    print(
        f"{'all':<22} {len(every):>3}  {statistics.median(every):>16.3f}  "
        f"{min(every):.3f}-{max(every):.3f}"
    )
    sidecars = [
        json.loads(p.read_text())
        for p in (Path(os.environ.get("PADNAS_CACHE", "")) / "tflite").rglob("int8/*.json")
        if "variant" in json.loads(p.read_text())
    ]
    errs = [s["check_int8_rel_rms"] for s in sidecars if s.get("check_int8_rel_rms") is not None]
    if errs:
        print()
        print(
            f"int8 check over {len(errs)} variants: relative RMS error median "
            f"{statistics.median(errs):.2%}, max {max(errs):.2%} (tolerance {INT8_TOLERANCE:.0%}); "
            f"{sum(e <= INT8_TOLERANCE for e in errs)} of {len(errs)} pass"
        )


if __name__ == "__main__":
    main()

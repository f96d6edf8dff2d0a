"""How the shipped Pixel 3 estimate prices networks it was never fitted on.

The estimate's transfer model is fitted on four networks of the paper's Table 3 (MobileNetV1,
MobileNetV2 1.0/1.4, ProxylessNAS-mobile). The paper's other Pixel 3 figures are how it is
checked, never what it is fitted on. This script writes two of them in plain torch from their
published definitions (the builders the ONNX zoo tests use, ``tests/zoo_support.py``), exports
them to ONNX, reads them back as layer lists and prices them with the pooled Pixel 3 table, the
way ``padnas-latency predict MODEL.onnx --lut pixel3`` does, with and without ``--space`` (the
figure must not depend on it). It prints each network's predicted and published latency, the
error, the share of the price that came from the regression fallback, and the MAPE.

    python benchmarks/pixel3_heldout.py [--lut device_profiles/pixel3.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the packages before tests/'s mirror folders

from zoo_support import export_onnx, mnasnet_a1, mobilenet_v3_large  # noqa: E402

from latency.cli.app import main  # noqa: E402

#: the paper's Pixel 3 latencies (Table 3: MnasNet; Table 4: MobileNetV3-Large 1.0)
PUBLISHED_MS = {"MnasNet-A1": 64.24, "MobileNetV3-Large": 52.6}
BUILDERS = {"MnasNet-A1": mnasnet_a1, "MobileNetV3-Large": mobilenet_v3_large}


def _predict(onnx: Path, lut: str, space: str | None) -> dict:
    args = ["predict", str(onnx), "--lut", lut, "--json"]
    args += ["--space", space] if space else []
    res = CliRunner().invoke(main, args)
    if res.exit_code != 0:
        raise SystemExit(f"predict {onnx.name} failed: {res.output.strip()}")
    return json.loads(res.output[res.output.index("{") :])["predictions"][0]


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lut", default=str(ROOT / "device_profiles" / "pixel3.json"))
    args = parser.parse_args()
    errors = []
    print(f"{'network':<20} {'predicted':>10} {'published':>10} {'error':>8} {'regression':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in BUILDERS.items():
            onnx = export_onnx(build().eval(), Path(tmp) / f"{name}.onnx")
            docs = [_predict(onnx, args.lut, space) for space in (None, "basic", "large", "v3")]
            if len({d["ms"] for d in docs}) != 1:
                raise SystemExit(f"{name}: the price depends on --space: {[d['ms'] for d in docs]}")
            doc = docs[0]
            err = (doc["ms"] - PUBLISHED_MS[name]) / PUBLISHED_MS[name] * 100
            errors.append(abs(err))
            reg = doc["source_ms"].get("regression", 0.0) / sum(doc["source_ms"].values()) * 100
            print(
                f"{name:<20} {doc['ms']:>8.2f}ms {PUBLISHED_MS[name]:>8.2f}ms {err:>+7.1f}% "
                f"{reg:>9.0f}%"
            )
    print(
        f"MAPE {statistics.mean(errors):.1f}% (max {max(errors):.1f}%) over {len(errors)} networks"
    )


if __name__ == "__main__":
    main_()

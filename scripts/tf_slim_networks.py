"""Write ``latency/data/tf_slim_published.json``: MobileNet variants with published phone latencies.

The TensorFlow-Slim MobileNet release (tensorflow/models,
``research/slim/nets/mobilenet/README.md``) publishes whole-network float latencies measured
with TFLite on one large core of Pixel phones:

* MobileNetV3 (Table "Mobilenet V3 Imagenet Checkpoints", Pixel 1/2/3 columns): Small 1.0 and
  0.75, and the "minimalistic" Large and Small (no SE, no h-swish, 3x3 kernels only);
* MobileNetV2 at six width multipliers and five resolutions ("Mobile CPU (ms) Pixel 1").

This script writes their layer lists (``docs/network-format.md``) from the architecture tables
(Howard et al. 2019, Tables 1-2; Sandler et al. 2018, Table 2) with the slim release's width
rules: every channel count is ``make_divisible(c × multiplier, 8)``, the expansions are factors of
the block's (scaled) input, the SE width is ``make_divisible(hidden / 4, 8)``, and the last
1x1 conv (MobileNetV2's 1280 channels, MobileNetV3's pooled 1280/1024) keeps its width for
multipliers below 1 (the release's "finegrain classification mode": the published parameter
counts need it). The MACs and parameters of MobileNetV3-Small in the README (66 M, 2.9 M) match
neither the architecture table nor this list (56.5 M, 2.54 M, as torchvision's model), though
the list follows the release's own definition; its Pixel latencies are used as published.
MobileNetV3-Large 1.0 and 0.75 are written too, but their latencies are stored as
``check_<device>_latency_ms``, never as a fit target: they are networks of the PAD-NAS paper's
Table 4, which the Pixel 3 estimate is checked against. The script checks the MobileNetV2 1.0 and
1.4 lists against ``pixel3_published.json`` (the same networks, written independently) and every
network's MACs and parameters against the published figures.

    python scripts/tf_slim_networks.py          # rewrites latency/data/tf_slim_published.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from latency.networks.checks import load_networks  # noqa: E402
from latency.networks.units import network_units  # noqa: E402

OUT = ROOT / "latency" / "data" / "tf_slim_published.json"
SOURCE = (
    "tensorflow/models research/slim/nets/mobilenet/README.md (phone latencies: TFLite, float, "
    "one large core, batch 1; TFLite version and benchmark settings not stated)"
)

# MobileNetV3 bottlenecks: (kernel, expansion factor of the block input, out, SE, act, stride)
V3_LARGE = [
    (3, 1, 16, False, "relu", 1),
    (3, 4, 24, False, "relu", 2),
    (3, 3, 24, False, "relu", 1),
    (5, 3, 40, True, "relu", 2),
    (5, 3, 40, True, "relu", 1),
    (5, 3, 40, True, "relu", 1),
    (3, 6, 80, False, "hswish", 2),
    (3, 2.5, 80, False, "hswish", 1),
    (3, 2.3, 80, False, "hswish", 1),
    (3, 2.3, 80, False, "hswish", 1),
    (3, 6, 112, True, "hswish", 1),
    (3, 6, 112, True, "hswish", 1),
    (5, 6, 160, True, "hswish", 2),
    (5, 6, 160, True, "hswish", 1),
    (5, 6, 160, True, "hswish", 1),
]
V3_SMALL = [
    (3, 1, 16, True, "relu", 2),
    (3, 72 / 16, 24, False, "relu", 2),
    (3, 88 / 24, 24, False, "relu", 1),
    (5, 4, 40, True, "hswish", 2),
    (5, 6, 40, True, "hswish", 1),
    (5, 6, 40, True, "hswish", 1),
    (5, 3, 48, True, "hswish", 1),
    (5, 3, 48, True, "hswish", 1),
    (5, 6, 96, True, "hswish", 2),
    (5, 6, 96, True, "hswish", 1),
    (5, 6, 96, True, "hswish", 1),
]
# (blocks, last 1x1 conv, pooled 1x1 conv (no BN: an fc with bias))
V3_DEFS = {"Large": (V3_LARGE, 960, 1280), "Small": (V3_SMALL, 576, 1024)}
# MobileNetV2: (expansion, out, repeats, first stride)
V2_DEF = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1)]
V2_DEF += [(6, 160, 3, 2), (6, 320, 1, 1)]

# README figures: name -> (published MACs M, params M, {device: ms})
V3_PUBLISHED = {
    ("Large", 1.0, False): (217, 5.4, {"pixel1": 51.2, "pixel2": 61, "pixel3": 44}),
    ("Large", 0.75, False): (155, 4.0, {"pixel1": 39.8, "pixel2": 48, "pixel3": 34}),
    ("Small", 1.0, False): (66, 2.9, {"pixel1": 15.8, "pixel2": 19.4, "pixel3": 14.4}),
    ("Small", 0.75, False): (44, 2.4, {"pixel1": 12.8, "pixel2": 15.9, "pixel3": 11.6}),
    ("Large", 1.0, True): (209, 3.9, {"pixel1": 44.1, "pixel2": 51, "pixel3": 35}),
    ("Small", 1.0, True): (65, 2.0, {"pixel1": 12.2, "pixel2": 15.1, "pixel3": 11}),
}
#: the PAD-NAS paper's Table 4 networks: checked against, never fitted on
HELD_OUT = {("Large", 1.0, False), ("Large", 0.75, False)}
# (multiplier, resolution) -> (MACs M, params M, Pixel 1 ms)
V2_PUBLISHED = {
    (1.4, 224): (582, 6.06, 138.0),
    (1.3, 224): (509, 5.34, 123.0),
    (1.0, 224): (300, 3.47, 73.8),
    (1.0, 192): (221, 3.47, 55.1),
    (1.0, 160): (154, 3.47, 40.2),
    (1.0, 128): (99, 3.47, 27.6),
    (1.0, 96): (56, 3.47, 17.6),
    (0.75, 224): (209, 2.61, 55.8),
    (0.75, 192): (153, 2.61, 41.6),
    (0.75, 160): (107, 2.61, 30.4),
    (0.75, 128): (69, 2.61, 21.9),
    (0.75, 96): (39, 2.61, 14.2),
    (0.5, 224): (97, 1.95, 28.7),
    (0.5, 192): (71, 1.95, 21.1),
    (0.5, 160): (50, 1.95, 14.9),
    (0.5, 128): (32, 1.95, 9.9),
    (0.5, 96): (18, 1.95, 6.4),
    (0.35, 224): (59, 1.66, 19.7),
    (0.35, 192): (43, 1.66, 14.6),
    (0.35, 160): (30, 1.66, 10.5),
    (0.35, 128): (20, 1.66, 6.9),
    (0.35, 96): (11, 1.66, 4.5),
}


def make_divisible(value: float, divisor: int = 8) -> int:
    """The slim release's channel rounding: nearest multiple of 8, never 10 % below the value."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def ibconv(cin, cout, kernel, stride, hidden, act, se_hidden=0) -> dict:
    layer = {"type": "ibconv", "cin": cin, "cout": cout, "kernel": kernel, "stride": stride}
    layer |= {"hidden": hidden, "expand_conv": hidden != cin, "act": act}
    if se_hidden:
        layer |= {"se": True, "se_hidden": se_hidden, "se_act": "relu", "se_gate": "hsigmoid"}
    return layer


def v3_layers(kind: str, mult: float, minimal: bool) -> list[dict]:
    blocks, last, feat = V3_DEFS[kind]
    hs = "relu" if minimal else "hswish"
    cin = make_divisible(16 * mult)
    layers = [{"type": "conv", "cin": 3, "cout": cin, "kernel": 3, "stride": 2, "act": hs}]
    for kernel, factor, out, se, act, stride in blocks:
        cout = make_divisible(out * mult)
        hidden = make_divisible(cin * factor)
        se_hidden = make_divisible(hidden / 4) if se and not minimal else 0
        k, a = (3, "relu") if minimal else (kernel, act)
        layers.append(ibconv(cin, cout, k, stride, hidden, a, se_hidden))
        cin = cout
    last = make_divisible(last * mult)
    layers.append({"type": "conv", "cin": cin, "cout": last, "kernel": 1, "act": hs})
    layers.append({"type": "pool", "cin": last, "cout": last})
    feat = feat if mult < 1 else make_divisible(feat * mult)  # kept for the 0.75 checkpoints
    layers.append({"type": "fc", "cin": last, "cout": feat, "act": hs})
    layers.append({"type": "fc", "cin": feat, "cout": 1000, "act": None})
    return layers


def v2_layers(mult: float) -> list[dict]:
    cin = make_divisible(32 * mult)
    layers = [{"type": "conv", "cin": 3, "cout": cin, "kernel": 3, "stride": 2, "act": "relu6"}]
    for factor, out, repeats, first_stride in V2_DEF:
        cout = make_divisible(out * mult)
        for i in range(repeats):
            stride = first_stride if i == 0 else 1
            hidden = (
                cin * factor
            )  # slim: make_divisible(cin × 6) = cin × 6 (cin is a multiple of 8)
            layers.append(ibconv(cin, cout, 3, stride, hidden, "relu6"))
            cin = cout
    last = 1280 if mult <= 1 else make_divisible(1280 * mult)
    layers.append({"type": "conv", "cin": cin, "cout": last, "kernel": 1, "act": "relu6"})
    layers.append({"type": "pool", "cin": last, "cout": last})
    layers.append({"type": "fc", "cin": last, "cout": 1000, "act": None})
    return layers


def networks() -> dict[str, dict]:
    nets = {}
    for (kind, mult, minimal), (macs, params, ms) in V3_PUBLISHED.items():
        name = f"MobileNetV3_{kind}_{mult}" + ("_minimalistic" if minimal else "")
        net = {"source": SOURCE, "input": 224, "num_classes": 1000, "width_multiplier": mult}
        net |= {"published_flops_M": macs, "published_params_M": params}
        for device, value in ms.items():
            key = "check_" if (kind, mult, minimal) in HELD_OUT else ""
            net[f"{key}{device}_latency_ms"] = value
        nets[name] = net | {"layers": v3_layers(kind, mult, minimal)}
    for (mult, size), (macs, params, ms) in V2_PUBLISHED.items():
        net = {"source": SOURCE, "input": size, "num_classes": 1000, "width_multiplier": mult}
        net |= {"published_flops_M": macs, "published_params_M": params, "pixel1_latency_ms": ms}
        nets[f"MobileNetV2_{mult}_{size}"] = net | {"layers": v2_layers(mult)}
    return nets


def check(nets: dict[str, dict]) -> None:
    loaded = load_networks({"networks": nets})
    paper = json.loads((OUT.parent / "pixel3_published.json").read_text())["networks"]
    for mult, name in ((1.0, "MobileNetV2_1.0"), (1.4, "MobileNetV2_1.4")):
        theirs = load_networks({"networks": {"p": paper[name]}})["p"]
        ours = loaded[f"MobileNetV2_{mult}_224"]
        if [u.key for u in network_units(ours)] != [u.key for u in network_units(theirs)]:
            raise SystemExit(f"MobileNetV2 {mult}: differs from pixel3_published.json")
    print(f"{'network':<34} {'MACs M':>7} {'published':>9} {'params M':>8} {'published':>9}")
    for name, net in loaded.items():
        macs, params = net.macs / 1e6, net.params / 1e6
        meta = nets[name]
        print(
            f"{name:<34} {macs:7.1f} {meta['published_flops_M']:9g} {params:8.2f} "
            f"{meta['published_params_M']:9g}"
        )


def main() -> None:
    nets = networks()
    check(nets)
    doc = {
        "description": (
            "Whole-network float latencies of MobileNetV2/V3 variants published by the "
            "TensorFlow-Slim release, measured with TFLite on one large core of Pixel phones; "
            "layer lists written by scripts/tf_slim_networks.py from the architecture tables "
            "with the release's width rules. '<device>_latency_ms' fields are fit targets; "
            "'check_<device>_latency_ms' are networks of the PAD-NAS paper's tables, kept only "
            "to compare this measurement campaign with the paper's, never fitted on."
        ),
        "conventions": "docs/network-format.md",
        "networks": nets,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} ({len(nets)} networks)")


if __name__ == "__main__":
    main()

"""Table 1's macro structure: stages, widths, strides and activations of each space family,
and the channel rounding every network of the project shares.
"""

from __future__ import annotations

from dataclasses import dataclass

# Table 1: (output channels, repeats, stride of the first block) for the seven SBS stages.
# The first three stages differ between the basic (32-16-32) and large (16-16-24) spaces.
_STAGES_TAIL = ((40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1))
# Activations: the paper's spaces use ReLU6 throughout (MobileNetV2); ``acts`` gives one per stage
# where a space differs, ``stem_act``/``head_act`` the activation of the fixed ends.
MACROS = {
    "basic": {"stem": 32, "stages": ((16, 1, 1), (32, 4, 2), *_STAGES_TAIL)},
    "large": {"stem": 16, "stages": ((16, 1, 1), (24, 4, 2), *_STAGES_TAIL)},
    # PAD-NAS-V3 (paper Table 4). The paper gives no layer table for it; this is our definition,
    # built on MobileNetV3-Large's macro structure:
    # * stem: 3x3 stride-2 conv to 16 channels with h-swish, as MobileNetV3-Large;
    # * stages: MobileNetV3-Large's output widths 16-24-40-80-112-160 with its strides 1-2-2-2-1-2
    #   (the 7x7 output of the last stage is the same as in the other spaces);
    # * repeats: 1 for the first stage (MobileNetV3-Large's single 16-channel block, the same
    #   kernel-only choice as the paper's first layer), 4 for every later stage as in Table 1, so
    #   the depth (21 searchable layers) is near the basic space's 22 and a searched network can be
    #   as deep as MobileNetV3-Large (15 blocks) or deeper;
    # * activations: ReLU in the first three stages (112..28 px) and h-swish from the 80-channel
    #   stage on, exactly where MobileNetV3-Large switches (h-swish costs most at high resolution);
    # * head: the other spaces' head (1x1 conv to 1280, global pool, classifier) with h-swish,
    #   so the three spaces differ only in what is searched, not in the fixed ends.
    # Per searchable layer: kernel 3/5/7 x expansion 3/6 x squeeze-excite on/off (12 ops), plus
    # identity where the basic space allows it (not in the first layer of a stage); the first
    # layer takes kernel 3/5/7 at expansion 1 with SE on/off (6 ops). SE is MobileNetV3's: squeeze
    # to a quarter of the hidden width (rounded to 8), ReLU, hard-sigmoid gate.
    "v3": {
        "stem": 16,
        "stages": ((16, 1, 1), (24, 4, 2), (40, 4, 2), (80, 4, 2), (112, 4, 1), (160, 4, 2)),
        "acts": ("relu", "relu", "relu", "hswish", "hswish", "hswish"),
        "stem_act": "hswish",
        "head_act": "hswish",
    },
}
# The one list of space names: every ``--space`` option (CLI and benchmarks) offers exactly these.
SPACE_NAMES: tuple[str, ...] = tuple(MACROS)
DEFAULT_ACT = "relu6"
STEM_STRIDE = 2
HEAD_CHANNELS = 1280
DEPLOY_RESOLUTION = 224
DEPLOY_CLASSES = 1000


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor`` without dropping more than 10% (MobileNetV2)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def se_channels(hidden_chs: int) -> int:
    """Squeeze width of MobileNetV3's SE: a quarter of the hidden channels, rounded to 8."""
    return make_divisible(hidden_chs / 4)


@dataclass(frozen=True)
class LayerSpec:
    """Shape facts of one searchable layer at width 1.0 (deployment form)."""

    index: int
    stage: int
    in_chs: int
    out_chs: int
    stride: int
    first_in_stage: bool
    act: str = DEFAULT_ACT

    @property
    def residual(self) -> bool:
        """Whether the deployed (full-width) block adds its input to its output: stride 1 and
        equal channels at width 1.0. A proxy network takes this, never its own rounded widths
        (at width 0.25, 32->16 and 80->96 both round to equal widths)."""
        return self.stride == 1 and self.in_chs == self.out_chs


def layer_specs(family: str) -> tuple[LayerSpec, ...]:
    macro = MACROS[family]
    in_chs = macro["stem"]
    specs = []
    acts = macro.get("acts", (DEFAULT_ACT,) * len(macro["stages"]))
    for stage, (out_chs, repeats, stride) in enumerate(macro["stages"]):
        for r in range(repeats):
            specs.append(
                LayerSpec(
                    len(specs), stage, in_chs, out_chs, stride if r == 0 else 1, r == 0, acts[stage]
                )
            )
            in_chs = out_chs
    return tuple(specs)

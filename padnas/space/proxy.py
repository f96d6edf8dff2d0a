"""How networks are trained on a budget: input resolution, width multiplier and the stride-2
downsamplings a small input skips."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from padnas.space.catalogue import SpaceError
from padnas.space.macro import DEPLOY_RESOLUTION, STEM_STRIDE, make_divisible


@dataclass(frozen=True)
class Proxy:
    """How networks are trained on a budget: input resolution, width multiplier and dropped strides.

    The op choices and the residual connections never depend on it; channel counts are scaled and
    rounded to multiples of 8 as MobileNetV2 does, so every layer keeps at least 8 channels.
    ``dropped_strides`` runs the network's first that many stride-2 downsamplings (the stem's,
    then the first layers of the next stages) at stride 1, as CIFAR adaptations of MobileNetV2
    do: at 32x32 with the 224-px strides the last layers see 2x2 and 1x1 maps, where a 5x5 or
    7x7 kernel reaches only what a 3x3 does; two dropped strides keep every map at 4x4 or more.
    """

    resolution: int = DEPLOY_RESOLUTION
    width_mult: float = 1.0
    dropped_strides: int = 0

    def __post_init__(self) -> None:
        if self.resolution < 32 or self.resolution % 32:
            raise SpaceError(
                f"resolution {self.resolution} is not supported: use a multiple of 32 "
                "(the network downsamples by 32), e.g. 32, 64 or 224"
            )
        if not 0.05 <= self.width_mult <= 4:
            raise SpaceError(f"width multiplier {self.width_mult} out of range: use 0.05..4")
        if not 0 <= self.dropped_strides <= 5:
            raise SpaceError(
                f"dropped strides {self.dropped_strides} out of range: use 0..5 (the network "
                "downsamples five times)"
            )

    def channels(self, chs: int) -> int:
        return make_divisible(chs * self.width_mult)

    def strides(self, layer_strides: Sequence[int]) -> tuple[int, tuple[int, ...]]:
        """(stem stride, per-layer strides) of the proxy network for a space whose layers have
        ``layer_strides`` when deployed: the first ``dropped_strides`` downsamplings become 1."""
        deployed = (STEM_STRIDE, *layer_strides)
        if self.dropped_strides > sum(s > 1 for s in deployed):
            raise SpaceError(
                f"dropped strides {self.dropped_strides}: the network downsamples only "
                f"{sum(s > 1 for s in deployed)} times"
            )
        out, left = [], self.dropped_strides
        for s in deployed:
            if s > 1 and left:
                s, left = 1, left - 1
            out.append(s)
        return out[0], tuple(out[1:])

    def map_sizes(self, layer_strides: Sequence[int]) -> tuple[int, ...]:
        """Side of each searchable layer's output map at this resolution."""
        stem, strides = self.strides(layer_strides)
        size, sizes = self.resolution // stem, []
        for s in strides:
            size //= s
            sizes.append(size)
        return tuple(sizes)

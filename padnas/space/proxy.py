"""How networks are trained on a budget: input resolution and width multiplier."""

from __future__ import annotations

from dataclasses import dataclass

from padnas.space.catalogue import SpaceError
from padnas.space.macro import DEPLOY_RESOLUTION, make_divisible


@dataclass(frozen=True)
class Proxy:
    """How networks are trained on a budget: input resolution and width multiplier.

    The op choices never depend on it; channel counts are scaled and rounded to multiples of 8 as
    MobileNetV2 does, so every layer keeps at least 8 channels.
    """

    resolution: int = DEPLOY_RESOLUTION
    width_mult: float = 1.0

    def __post_init__(self) -> None:
        if self.resolution < 32 or self.resolution % 32:
            raise SpaceError(
                f"resolution {self.resolution} is not supported: use a multiple of 32 "
                "(the network downsamples by 32), e.g. 32, 64 or 224"
            )
        if not 0.05 <= self.width_mult <= 4:
            raise SpaceError(f"width multiplier {self.width_mult} out of range: use 0.05..4")

    def channels(self, chs: int) -> int:
        return make_divisible(chs * self.width_mult)

"""The search-space vocabulary (no torch): op names and catalogues (Table 2), the macro structure
(Table 1), architectures, the training proxy, search spaces and the ``--space`` option."""

from padnas.space.arch import Arch
from padnas.space.catalogue import (
    CATALOGUES,
    FIRST_LAYER_OPS,
    IDENTITY,
    SE_SUFFIX,
    OpSpec,
    SpaceError,
    parse_op,
)
from padnas.space.macro import (
    DEFAULT_ACT,
    DEPLOY_CLASSES,
    DEPLOY_RESOLUTION,
    HEAD_CHANNELS,
    MACROS,
    SPACE_NAMES,
    STEM_STRIDE,
    LayerSpec,
    make_divisible,
    se_channels,
)
from padnas.space.proxy import Proxy
from padnas.space.spaces import SearchSpace, get_space

__all__ = [
    "CATALOGUES",
    "DEFAULT_ACT",
    "DEPLOY_CLASSES",
    "DEPLOY_RESOLUTION",
    "FIRST_LAYER_OPS",
    "HEAD_CHANNELS",
    "IDENTITY",
    "MACROS",
    "SE_SUFFIX",
    "SPACE_NAMES",
    "STEM_STRIDE",
    "Arch",
    "LayerSpec",
    "OpSpec",
    "Proxy",
    "SearchSpace",
    "SpaceError",
    "get_space",
    "make_divisible",
    "parse_op",
    "se_channels",
]

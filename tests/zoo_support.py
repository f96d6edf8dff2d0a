"""The mobile zoo written in plain torch from the papers' definitions, as a user would write them:
MobileNetV2, MobileNetV3-Large/Small, MnasNet-A1, EfficientNet-B0, ShuffleNetV2 x1.0 and
ResNet-18 (ImageNet heads, random weights), and their ONNX export. ``HELD_OUT`` adds the
networks of the PAD-NAS paper's Tables 3-4 with a published Pixel 3 latency that the shipped
estimate was not fitted on: FBNet-A/B/C, FairNAS-C, Single-Path NAS and MobileNetV3-Large x0.75,
each read from its authors' public definition and checked against the paper's MACs and
parameters (each builder's docstring says how closely).

Nothing here comes from padnas or latency: the ONNX reader is tested against models it has not
written. Blocks follow the published tables; SE widths follow each family's rule (MobileNetV3:
a quarter of the expanded width rounded to 8; MnasNet and EfficientNet: a quarter of the block's
input width). MnasNet writes its squeeze-excite with 1x1 convs, EfficientNet with Linear layers,
and ShuffleNetV2 splits with ``chunk`` (or slicing) and shuffles with view/transpose, so both ways
of writing each piece are read.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

INPUT = 224


def make_divisible(v: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding: nearest multiple of ``divisor``, never 10% below ``v``."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def conv_bn(cin: int, cout: int, k: int, s: int = 1, groups: int = 1, act=None) -> nn.Sequential:
    """k x k conv (padding k // 2, no bias) + BatchNorm + ``act`` (an nn.Module class or None)."""
    layers = [
        nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class ConvSE(nn.Module):
    """Squeeze-excite with 1x1 convs (MobileNetV3, MnasNet)."""

    def __init__(self, chs: int, squeeze: int, act=nn.ReLU, gate=nn.Sigmoid) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.act = nn.Conv2d(chs, squeeze, 1), act()
        self.fc2, self.gate = nn.Conv2d(squeeze, chs, 1), gate()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class LinearSE(nn.Module):
    """Squeeze-excite with Linear layers on the pooled vector (EfficientNet as often written)."""

    def __init__(self, chs: int, squeeze: int, act=nn.SiLU, gate=nn.Sigmoid) -> None:
        super().__init__()
        self.fc1, self.act = nn.Linear(chs, squeeze), act()
        self.fc2, self.gate = nn.Linear(squeeze, chs), gate()

    def forward(self, x):
        n, c = x.shape[:2]
        s = self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3))))))
        return x * s.view(n, c, 1, 1)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: [1x1 expand + act] -> kxk depthwise + act -> [SE] -> 1x1 linear,
    with the input added back at stride 1 and equal widths."""

    def __init__(self, cin, cout, k, s, hidden, act, se: nn.Module | None = None) -> None:
        super().__init__()
        layers = [] if hidden == cin else [conv_bn(cin, hidden, 1, act=act)]
        layers.append(conv_bn(hidden, hidden, k, s, groups=hidden, act=act))
        if se is not None:
            layers.append(se)
        layers.append(conv_bn(hidden, cout, 1))
        self.block = nn.Sequential(*layers)
        self.residual = s == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


def _classifier(cin: int, feat: int | None, act, classes: int = 1000) -> list[nn.Module]:
    """Global average pool, flatten, [Linear to ``feat`` + act], dropout, Linear to classes."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if feat is not None:
        layers += [nn.Linear(cin, feat), act()]
        cin = feat
    return [*layers, nn.Dropout(0.2), nn.Linear(cin, classes)]


def mobilenet_v2() -> nn.Module:
    """Sandler et al. 2018, Table 2."""
    settings = [  # t, c, n, s
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]
    layers: list[nn.Module] = [conv_bn(3, 32, 3, 2, act=nn.ReLU6)]
    cin = 32
    for t, c, n, s in settings:
        for i in range(n):
            layers.append(InvertedResidual(cin, c, 3, s if i == 0 else 1, cin * t, nn.ReLU6))
            cin = c
    layers += [conv_bn(cin, 1280, 1, act=nn.ReLU6), *_classifier(1280, None, None)]
    return nn.Sequential(*layers).eval()


#: MobileNetV3 (Howard et al. 2019, Tables 1 and 2): kernel, expanded width, out, SE, h-swish,
#: stride
V3_LARGE = [
    (3, 16, 16, False, False, 1),
    (3, 64, 24, False, False, 2),
    (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2),
    (5, 120, 40, True, False, 1),
    (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2),
    (3, 200, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 480, 112, True, True, 1),
    (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2),
    (5, 960, 160, True, True, 1),
    (5, 960, 160, True, True, 1),
]
V3_SMALL = [
    (3, 16, 16, True, False, 2),
    (3, 72, 24, False, False, 2),
    (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2),
    (5, 240, 40, True, True, 1),
    (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1),
    (5, 144, 48, True, True, 1),
    (5, 288, 96, True, True, 2),
    (5, 576, 96, True, True, 1),
    (5, 576, 96, True, True, 1),
]


def _mobilenet_v3(table, last: int, feat: int, width: float = 1.0) -> nn.Module:
    """A MobileNetV3 at a width multiplier, as the authors' slim reference scales it: the stem,
    every block's output and the last conv are ``make_divisible(width * c, 8)``; a block's
    expanded width is its expansion ratio (``hidden / cin`` of the width-1.0 table) times its
    scaled input width, rounded the same way; the classifier's hidden layer (``feat``) keeps its
    width (slim's "finegrain classification mode"). At width 1.0 this is the table itself (its
    widths are multiples of 8)."""

    def w(c: float) -> int:
        return make_divisible(c * width)

    layers: list[nn.Module] = [conv_bn(3, w(16), 3, 2, act=nn.Hardswish)]
    cin, cin_1 = w(16), 16  # scaled input width, and the width-1.0 one the ratios refer to
    for k, hidden, cout, se, hs, s in table:
        hidden = make_divisible(cin * hidden / cin_1)
        act = nn.Hardswish if hs else nn.ReLU
        squeeze = ConvSE(hidden, make_divisible(hidden // 4), gate=nn.Hardsigmoid) if se else None
        layers.append(InvertedResidual(cin, w(cout), k, s, hidden, act, squeeze))
        cin, cin_1 = w(cout), cout
    layers += [
        conv_bn(cin, w(last), 1, act=nn.Hardswish),
        *_classifier(w(last), feat, nn.Hardswish),
    ]
    return nn.Sequential(*layers).eval()


def mobilenet_v3_large() -> nn.Module:
    return _mobilenet_v3(V3_LARGE, 960, 1280)


def mobilenet_v3_large_075() -> nn.Module:
    """MobileNetV3-Large x0.75 (Howard et al. 2019, Table 3: 155 M MAdds, 4.0 M parameters;
    the PAD-NAS paper's Table 4: 155 M FLOPs).

    Read back from ONNX: 154.6 M MACs (-0.3 %) and 3,993,528 parameters (the 3.99 M that
    timm lists for its port of the TF weights, ``tf_mobilenetv3_large_075``). Scaling the
    expanded widths themselves instead (torchvision's ``width_mult``) and the classifier's 1280
    gives 140.0 M MACs and 3.38 M parameters, 10 % and 16 % short: not the paper's network."""
    return _mobilenet_v3(V3_LARGE, 960, 1280, width=0.75)


def mobilenet_v3_small() -> nn.Module:
    return _mobilenet_v3(V3_SMALL, 576, 1024)


def _mbconv_stages(stages, cin: int, act, se_kind) -> tuple[list[nn.Module], int]:
    """MnasNet/EfficientNet stages ``(expansion, kernel, out, repeats, stride, se)``; the SE
    squeezes to a quarter of the block's input width."""
    layers: list[nn.Module] = []
    for e, k, cout, n, s, se in stages:
        for i in range(n):
            hidden = cin * e
            squeeze = se_kind(hidden, max(1, cin // 4)) if se else None
            layers.append(InvertedResidual(cin, cout, k, s if i == 0 else 1, hidden, act, squeeze))
            cin = cout
    return layers, cin


def mnasnet_a1() -> nn.Module:
    """Tan et al. 2019, Figure 7 (MnasNet-A1): ReLU, SE with sigmoid gate."""
    stages = [
        (1, 3, 16, 1, 1, False),  # SepConv: depthwise 3x3 + linear 1x1
        (6, 3, 24, 2, 2, False),
        (3, 5, 40, 3, 2, True),
        (6, 3, 80, 4, 2, False),
        (6, 3, 112, 2, 1, True),
        (6, 5, 160, 3, 2, True),
        (6, 3, 320, 1, 1, False),
    ]
    body, cin = _mbconv_stages(stages, 32, nn.ReLU, lambda c, s: ConvSE(c, s, nn.ReLU))
    stem = conv_bn(3, 32, 3, 2, act=nn.ReLU)
    head = [conv_bn(cin, 1280, 1, act=nn.ReLU), *_classifier(1280, None, None)]
    return nn.Sequential(stem, *body, *head).eval()


def efficientnet_b0() -> nn.Module:
    """Tan & Le 2019, Table 1: swish, SE in every block (Linear layers here)."""
    stages = [
        (1, 3, 16, 1, 1, True),
        (6, 3, 24, 2, 2, True),
        (6, 5, 40, 2, 2, True),
        (6, 3, 80, 3, 2, True),
        (6, 5, 112, 3, 1, True),
        (6, 5, 192, 4, 2, True),
        (6, 3, 320, 1, 1, True),
    ]
    body, cin = _mbconv_stages(stages, 32, nn.SiLU, lambda c, s: LinearSE(c, s, nn.SiLU))
    stem = conv_bn(3, 32, 3, 2, act=nn.SiLU)
    head = [conv_bn(cin, 1280, 1, act=nn.SiLU), *_classifier(1280, None, None)]
    return nn.Sequential(stem, *body, *head).eval()


def channel_shuffle(x, groups: int):
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    return torch.transpose(x, 1, 2).contiguous().view(n, -1, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's unit (Ma et al. 2018, Figure 3c/d): split in halves (stride 1) or both
    branches on the whole input (stride 2), concat, shuffle in two groups."""

    def __init__(self, cin: int, cout: int, stride: int, split: str = "chunk") -> None:
        super().__init__()
        half, self.stride, self.split = cout // 2, stride, split
        if stride > 1:
            self.branch1 = nn.Sequential(
                conv_bn(cin, cin, 3, stride, groups=cin), conv_bn(cin, half, 1, act=nn.ReLU)
            )
        self.branch2 = nn.Sequential(
            conv_bn(cin if stride > 1 else half, half, 1, act=nn.ReLU),
            conv_bn(half, half, 3, stride, groups=half),
            conv_bn(half, half, 1, act=nn.ReLU),
        )

    def forward(self, x):
        if self.stride > 1:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        elif self.split == "chunk":
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            half = x.shape[1] // 2
            out = torch.cat((x[:, :half], self.branch2(x[:, half:])), dim=1)
        return channel_shuffle(out, 2)


def shufflenet_v2(split: str = "chunk") -> nn.Module:
    """Ma et al. 2018, Table 5 (x1.0): stages of 4, 8 and 4 units at 116, 232 and 464."""
    layers: list[nn.Module] = [conv_bn(3, 24, 3, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, 1)]
    cin = 24
    for cout, n in ((116, 4), (232, 8), (464, 4)):
        for i in range(n):
            layers.append(ShuffleUnit(cin, cout, 2 if i == 0 else 1, split))
            cin = cout
    layers += [conv_bn(cin, 1024, 1, act=nn.ReLU), *_classifier(1024, None, None)]
    return nn.Sequential(*layers).eval()


class BasicBlock(nn.Module):
    """ResNet's basic block (He et al. 2016): two 3x3 convs, a 1x1 projection when the shape
    changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride, act=nn.ReLU)
        self.conv2 = conv_bn(cout, cout, 3)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = conv_bn(cin, cout, 1, stride)
        self.relu = nn.ReLU()

    def forward(self, x):
        skip = x if self.down is None else self.down(x)
        return self.relu(self.conv2(self.conv1(x)) + skip)


def resnet18() -> nn.Module:
    """He et al. 2016, Table 1 (18 layers)."""
    layers: list[nn.Module] = [conv_bn(3, 64, 7, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    layers += _classifier(512, None, None)
    return nn.Sequential(*layers).eval()


# ---- networks of the PAD-NAS paper's Tables 3-4 (held out from the Pixel 3 estimate's fit) ----


class FBNetBlock(nn.Module):
    """FBNet's block (Wu et al. 2019, Figure 3): 1x1 group conv + ReLU, a channel shuffle when
    grouped, kxk depthwise + ReLU, 1x1 linear group conv, the input added back at stride 1 and
    equal widths. The expand conv is there at expansion 1 too (``cin -> cin``), as in the
    authors' maskrcnn-benchmark ``IRFBlock`` and their released Caffe2 models."""

    def __init__(self, cin: int, cout: int, k: int, s: int, e: int, groups: int = 1) -> None:
        super().__init__()
        hidden, self.groups = cin * e, groups
        self.pw = conv_bn(cin, hidden, 1, groups=groups, act=nn.ReLU)
        self.dw = conv_bn(hidden, hidden, k, s, groups=hidden, act=nn.ReLU)
        self.pwl = conv_bn(hidden, cout, 1, groups=groups)
        self.residual = s == 1 and cin == cout

    def forward(self, x):
        y = self.pw(x)
        if self.groups > 1:
            y = channel_shuffle(y, self.groups)
        y = self.pwl(self.dw(y))
        return x + y if self.residual else y


#: FBNet-A/B/C, the 22 searched layers after the 3x3 stem (16 channels, stride 2): (kernel,
#: expansion, out, stride, groups), or None for a 'skip' (identity: every skip here keeps its
#: shape). Channels and strides of the macro space (FBNet Table 1): 16, 24 s2, 32 s2, 64 s2,
#: 112, 184 s2, 352. Blocks as in facebookresearch/maskrcnn-benchmark ``fbnet_modeldef.py`` and
#: mobile-vision ``fbnet_modeldef_cls.py``; where those two disagree (A: the third 112-wide
#: block, e1 vs e3; B: the second 64-wide block, e1 vs e6) the layer widths of the released
#: Caffe2 models (mobile-vision ``FBNet/models/FBNet-{A,B}/fp32/model.pbtxt``, depthwise
#: ``group`` = expanded width) decide: A e3, B e1. (Those netdefs also write two of A's grouped
#: k5 blocks with a 3x3 depthwise conv and one of B's k5 blocks as two stacked 3x3 ones; where
#: both definitions agree, they are kept.)
FBNET_A = [
    None,
    (3, 3, 24, 2, 1), (3, 1, 24, 1, 1), None, None,
    (5, 6, 32, 2, 1), (3, 3, 32, 1, 1), (5, 1, 32, 1, 1), (3, 3, 32, 1, 1),
    (5, 6, 64, 2, 1), (5, 3, 64, 1, 1), (5, 1, 64, 1, 2), (5, 6, 64, 1, 1),
    (3, 6, 112, 1, 1), (5, 1, 112, 1, 2), (5, 3, 112, 1, 1), (3, 1, 112, 1, 2),
    (5, 6, 184, 2, 1), (5, 6, 184, 1, 1), (5, 3, 184, 1, 1), (5, 6, 184, 1, 1),
    (5, 6, 352, 1, 1),
]  # fmt: skip
FBNET_B = [
    (3, 1, 16, 1, 1),
    (3, 6, 24, 2, 1), (5, 1, 24, 1, 1), (3, 1, 24, 1, 1), (3, 1, 24, 1, 1),
    (5, 6, 32, 2, 1), (5, 3, 32, 1, 1), (3, 6, 32, 1, 1), (5, 6, 32, 1, 1),
    (5, 6, 64, 2, 1), (5, 1, 64, 1, 1), None, (5, 3, 64, 1, 1),
    (5, 6, 112, 1, 1), (3, 1, 112, 1, 1), (5, 1, 112, 1, 1), (5, 3, 112, 1, 1),
    (5, 6, 184, 2, 1), (5, 1, 184, 1, 1), (5, 6, 184, 1, 1), (5, 6, 184, 1, 1),
    (3, 6, 352, 1, 1),
]  # fmt: skip
FBNET_C = [
    (3, 1, 16, 1, 1),
    (3, 6, 24, 2, 1), None, (3, 1, 24, 1, 1), (3, 1, 24, 1, 1),
    (5, 6, 32, 2, 1), (5, 3, 32, 1, 1), (5, 6, 32, 1, 1), (3, 6, 32, 1, 1),
    (5, 6, 64, 2, 1), (5, 3, 64, 1, 1), (5, 6, 64, 1, 1), (5, 6, 64, 1, 1),
    (5, 6, 112, 1, 1), (5, 6, 112, 1, 1), (5, 6, 112, 1, 1), (5, 3, 112, 1, 1),
    (5, 6, 184, 2, 1), (5, 6, 184, 1, 1), (5, 6, 184, 1, 1), (5, 6, 184, 1, 1),
    (3, 6, 352, 1, 1),
]  # fmt: skip


def _fbnet(blocks, head: int) -> nn.Module:
    layers: list[nn.Module] = [conv_bn(3, 16, 3, 2, act=nn.ReLU)]
    cin = 16
    for block in blocks:
        if block is None:  # 'skip': the identity
            continue
        k, e, cout, s, g = block
        layers.append(FBNetBlock(cin, cout, k, s, e, g))
        cin = cout
    layers += [conv_bn(cin, head, 1, act=nn.ReLU), *_classifier(head, None, None)]
    return nn.Sequential(*layers).eval()


def fbnet_a() -> nn.Module:
    """FBNet-A (Wu et al. 2019; last conv 1504 wide, FBNet Table 1). Paper: 249 M FLOPs, 4.3 M
    parameters. Read back from ONNX: 249.9 M MACs (+0.4 %), 4,321,464 parameters (+0.5 %)."""
    return _fbnet(FBNET_A, 1504)


def fbnet_b() -> nn.Module:
    """FBNet-B (last conv 1984 wide). Paper: 295 M FLOPs, 4.5 M parameters. Read back from
    ONNX: 296.6 M MACs (+0.5 %) but 4,813,048 parameters (+7.0 %): the paper's parameter count is
    not reproduced. Every block's width, kernel and stride is the released model's; its last
    conv width is not in the netdef (with 1504, as FBNet-A, it would be 4.16 M)."""
    return _fbnet(FBNET_B, 1984)


def fbnet_c() -> nn.Module:
    """FBNet-C (last conv 1984 wide). Paper: 375 M FLOPs, 5.5 M parameters. Read back from
    ONNX: 385.0 M MACs (+2.7 %), 5,572,200 parameters (+1.3 %; timm lists 5.57 M for its
    ``fbnetc_100``, the same block list)."""
    return _fbnet(FBNET_C, 1984)


def fairnas_c() -> nn.Module:
    """FairNAS-C (Chu et al. 2019; xiaomi-automl/FairNAS release, as its ``FairNasC`` port
    writes it): ReLU6, a 3x3 stem to 32 and a depthwise-separable layer to 16, then 19 inverted
    residuals ``(in, expansion, out, kernel, stride)`` on ProxylessNAS's macro widths, and a
    1x1 conv to 1280. Paper (PAD-NAS Table 3): 321 M FLOPs, 4.4 M parameters. Read back from
    ONNX: 321.0 M MACs (+0.01 %), 4,397,864 parameters (-0.05 %)."""
    blocks = [
        (16, 3, 32, 5, 2), (32, 3, 32, 3, 1),
        (32, 3, 40, 7, 2), (40, 3, 40, 3, 1), (40, 3, 40, 3, 1), (40, 3, 40, 3, 1),
        (40, 3, 80, 3, 2), (80, 3, 80, 3, 1), (80, 3, 80, 3, 1), (80, 6, 80, 3, 1),
        (80, 3, 96, 3, 1), (96, 3, 96, 3, 1), (96, 3, 96, 3, 1), (96, 3, 96, 3, 1),
        (96, 6, 192, 7, 2), (192, 6, 192, 7, 1), (192, 6, 192, 3, 1), (192, 6, 192, 3, 1),
        (192, 6, 320, 5, 1),
    ]  # fmt: skip
    layers: list[nn.Module] = [
        conv_bn(3, 32, 3, 2, act=nn.ReLU6),
        InvertedResidual(32, 16, 3, 1, 32, nn.ReLU6),  # depthwise 3x3 + linear 1x1
    ]
    for cin, e, cout, k, s in blocks:
        layers.append(InvertedResidual(cin, cout, k, s, cin * e, nn.ReLU6))
    layers += [conv_bn(320, 1280, 1, act=nn.ReLU6), *_classifier(1280, None, None)]
    return nn.Sequential(*layers).eval()


def single_path_nas() -> nn.Module:
    """Single-Path NAS (Stamoulis et al. 2019, the Pixel 1 search's ConvNet, as timm's
    ``spnasnet_100`` writes it): ReLU, MnasNet's macro space with stages ``(expansion,
    kernel, out, repeats, stride, se)`` and no SE. Paper (PAD-NAS Table 3): 334 M FLOPs, 4.4 M
    parameters. Read back from ONNX: 333.5 M MACs (-0.2 %), 4,421,616 parameters (+0.5 %)."""
    stages = [
        (1, 3, 16, 1, 1, False),  # depthwise 3x3 + linear 1x1, no residual (32 -> 16)
        (3, 3, 24, 3, 2, False),
        (6, 5, 40, 1, 2, False),
        (3, 3, 40, 3, 1, False),
        (6, 5, 80, 1, 2, False),
        (3, 3, 80, 3, 1, False),
        (6, 5, 96, 1, 1, False),
        (3, 5, 96, 3, 1, False),
        (6, 5, 192, 4, 2, False),
        (6, 3, 320, 1, 1, False),
    ]
    body, cin = _mbconv_stages(stages, 32, nn.ReLU, None)
    stem = conv_bn(3, 32, 3, 2, act=nn.ReLU)
    head = [conv_bn(cin, 1280, 1, act=nn.ReLU), *_classifier(1280, None, None)]
    return nn.Sequential(stem, *body, *head).eval()


ZOO = {
    "MobileNetV2": mobilenet_v2,
    "MobileNetV3-Large": mobilenet_v3_large,
    "MobileNetV3-Small": mobilenet_v3_small,
    "MnasNet-A1": mnasnet_a1,
    "EfficientNet-B0": efficientnet_b0,
    "ShuffleNetV2": shufflenet_v2,
    "ResNet-18": resnet18,
}

#: the networks of the PAD-NAS paper's Tables 3-4 with a published Pixel 3 latency that the
#: shipped estimate was not fitted on (MnasNet-A1 and MobileNetV3-Large are in ``ZOO``)
HELD_OUT = {
    "FBNet-A": fbnet_a,
    "FBNet-B": fbnet_b,
    "FBNet-C": fbnet_c,
    "FairNAS-C": fairnas_c,
    "Single-Path NAS": single_path_nas,
    "MobileNetV3-Large-0.75": mobilenet_v3_large_075,
}


def export_onnx(module: nn.Module, path: Path, size: int = INPUT) -> Path:
    """``module`` as ONNX (opset 17, the TorchScript exporter), input (1, 3, size, size)."""
    torch.onnx.export(
        module.eval(), (torch.zeros(1, 3, size, size),), str(path), opset_version=17, dynamo=False
    )
    return path

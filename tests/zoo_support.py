"""The mobile zoo written in plain torch from the papers' definitions, as a user would write them:
MobileNetV2, MobileNetV3-Large/Small, MnasNet-A1, EfficientNet-B0, ShuffleNetV2 x1.0 and
ResNet-18 (ImageNet heads, random weights), and their ONNX export.

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


def _mobilenet_v3(table, last: int, feat: int) -> nn.Module:
    layers: list[nn.Module] = [conv_bn(3, 16, 3, 2, act=nn.Hardswish)]
    cin = 16
    for k, hidden, cout, se, hs, s in table:
        act = nn.Hardswish if hs else nn.ReLU
        squeeze = ConvSE(hidden, make_divisible(hidden // 4), gate=nn.Hardsigmoid) if se else None
        layers.append(InvertedResidual(cin, cout, k, s, hidden, act, squeeze))
        cin = cout
    layers += [conv_bn(cin, last, 1, act=nn.Hardswish), *_classifier(last, feat, nn.Hardswish)]
    return nn.Sequential(*layers).eval()


def mobilenet_v3_large() -> nn.Module:
    return _mobilenet_v3(V3_LARGE, 960, 1280)


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


ZOO = {
    "MobileNetV2": mobilenet_v2,
    "MobileNetV3-Large": mobilenet_v3_large,
    "MobileNetV3-Small": mobilenet_v3_small,
    "MnasNet-A1": mnasnet_a1,
    "EfficientNet-B0": efficientnet_b0,
    "ShuffleNetV2": shufflenet_v2,
    "ResNet-18": resnet18,
}


def export_onnx(module: nn.Module, path: Path, size: int = INPUT) -> Path:
    """``module`` as ONNX (opset 17, the TorchScript exporter), input (1, 3, size, size)."""
    torch.onnx.export(
        module.eval(), (torch.zeros(1, 3, size, size),), str(path), opset_version=17, dynamo=False
    )
    return path

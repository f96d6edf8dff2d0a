"""The proxy conv's shortcuts (cropped kernels, the folded depthwise backward) change no value."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from padnas.nn.dwconv import depthwise_conv2d
from padnas.nn.ops import SameConv2d


@pytest.mark.parametrize("size,kernel,stride", [(1, 7, 1), (2, 5, 2), (4, 7, 1), (5, 3, 2)])
def test_depthwise_backward_passes_gradcheck(size, kernel, stride):
    g = torch.Generator().manual_seed(size * kernel + stride)
    x = torch.randn(2, 3, size, size + 1, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 1, kernel, kernel, generator=g, dtype=torch.float64, requires_grad=True)
    pad = min(kernel // 2, size - 1)  # the padding SameConv2d hands over after cropping
    w_used = w[
        ..., kernel // 2 - pad : kernel // 2 + pad + 1, kernel // 2 - pad : kernel // 2 + pad + 1
    ]
    assert torch.autograd.gradcheck(
        lambda a, b: depthwise_conv2d(a, b, (stride, stride), (pad, pad)),
        (x, w_used.detach().requires_grad_()),
    )


@pytest.mark.parametrize("size", [1, 2, 3, 4, 8, 16])
@pytest.mark.parametrize("kernel,stride", [(3, 1), (5, 2), (7, 1), (7, 2)])
@pytest.mark.parametrize("groups", ["depthwise", "dense"])
def test_same_conv_matches_plain_conv(size, kernel, stride, groups):
    """Outputs and both gradients equal nn.Conv2d's with the same weights (float64)."""
    chs = 6
    g = 1 if groups == "dense" else chs
    ours = SameConv2d(chs, chs, kernel, stride, kernel // 2, groups=g, bias=False).double()
    plain = nn.Conv2d(chs, chs, kernel, stride, kernel // 2, groups=g, bias=False).double()
    plain.load_state_dict(ours.state_dict())
    gen = torch.Generator().manual_seed(size * 100 + kernel * 10 + stride)
    x = torch.randn(3, chs, size, size, generator=gen, dtype=torch.float64)
    outs, grads = [], []
    for conv in (ours, plain):
        xi = x.clone().requires_grad_()
        y = conv(xi)
        y.backward(torch.cos(torch.arange(y.numel(), dtype=torch.float64)).view_as(y))
        outs.append(y.detach())
        grads.append((xi.grad, conv.weight.grad))
    assert outs[0].shape == outs[1].shape
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-10, atol=1e-12)


def test_same_conv_refuses_other_paddings():
    with pytest.raises(ValueError, match="odd kernel"):
        SameConv2d(4, 4, 3, padding=0)
    with pytest.raises(ValueError, match="odd kernel"):
        SameConv2d(4, 4, 2, padding=1)

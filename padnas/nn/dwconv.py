"""Depthwise convolution with a backward pass that is fast on CPU for small feature maps.

Why: at proxy resolution the supernet's depthwise convs run on 2x2 to 8x8 maps, and PyTorch's CPU
``convolution_backward`` for them costs 10-60x their forward (for a 128x96x4x4 input and a 7x7
kernel: 0.6 ms forward, 17 ms backward), which made it three quarters of a supernet training step.
The same gradients come from two forward convolutions, which the CPU runs fast:

- input gradient: the transposed depthwise conv of the output gradient (a flipped-kernel conv
  at stride 1);
- weight gradient: with batch and channel folded into one grouped axis, each (sample, channel)
  plane of the input is correlated with its own output-gradient plane (a grouped conv whose
  "kernel" is the gradient, dilated by the stride), then summed over the batch.

Large maps with 3x3 kernels keep PyTorch's own backward, which is faster there
(:func:`use_fast_backward`). Values agree with PyTorch's to float rounding (tested with
``gradcheck`` in float64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def use_fast_backward(kernel: int, height: int, width: int) -> bool:
    """Measured break-even (2-core CPU, batch 128): the folded backward wins for kernels of 5 and
    7 at every proxy map size and for 3x3 kernels on maps up to 8x8; PyTorch's wins for 3x3 on
    16x16 (4.7 ms vs 21 ms)."""
    return kernel >= 5 or max(height, width) <= 8


class _DepthwiseConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(x, weight, None, stride, padding, 1, x.shape[1])

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        (sh, sw), (ph, pw) = ctx.stride, ctx.padding
        n, c, h, w = x.shape
        kh, kw = weight.shape[-2:]
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            out_pad = (
                h - ((grad.shape[-2] - 1) * sh - 2 * ph + kh),
                w - ((grad.shape[-1] - 1) * sw - 2 * pw + kw),
            )
            grad_x = F.conv_transpose2d(grad, weight, None, (sh, sw), (ph, pw), out_pad, c)
        if ctx.needs_input_grad[1]:
            planes = x.transpose(0, 1).reshape(1, c * n, h, w)
            kernels = grad.transpose(0, 1).reshape(c * n, 1, *grad.shape[-2:])
            corr = F.conv2d(planes, kernels, None, 1, (ph, pw), (sh, sw), c * n)
            grad_w = corr[..., :kh, :kw].reshape(c, n, kh, kw).sum(1, keepdim=True)
        return grad_x, grad_w, None, None


def depthwise_conv2d(
    x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int], padding: tuple[int, int]
) -> torch.Tensor:
    """``F.conv2d(x, weight, None, stride, padding, groups=channels)`` with the fast backward."""
    return _DepthwiseConv.apply(x, weight, tuple(stride), tuple(padding))

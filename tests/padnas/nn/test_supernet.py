"""Supernet: single-path forward equals the stand-alone network; pruning inherits weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from padnas.nn.initialize import init_weights
from padnas.nn.ops import IBConv, build_op
from padnas.nn.supernet import ChildNet, Supernet, layer_shapes
from padnas.space import IDENTITY, SPACE_NAMES, Proxy, get_space

PROXY = Proxy(32, 0.25)
# One thread: on a shared 2-core machine two OpenMP threads stall on every op when another
# process holds a core.
torch.set_num_threads(1)


def _randomise(net: nn.Module, seed: int) -> nn.Module:
    """Random weights and BN statistics/affine terms of a sane scale (no overflow), so that
    eval-mode outputs depend on every tensor."""
    init_weights(net, seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return net.eval()


@pytest.mark.parametrize("family", ["basic", "large"])
def test_supernet_path_equals_childnet(family):
    sp = get_space(family)
    net = _randomise(Supernet(sp, PROXY, 10), 0)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    rng = np.random.default_rng(0)
    for _ in range(3):
        arch = sp.sample(rng)
        child = net.extract(arch).eval()
        assert isinstance(child, ChildNet)
        with torch.no_grad():
            assert torch.equal(net(x, arch), child(x))
        # the child's names are the supernet's minus the op key: blocks.<j>.<op>.* -> blocks.<j>.*
        own = net.state_dict()
        for name, tensor in child.state_dict().items():
            layer, *rest = name.split(".")[1:] if name.startswith("blocks.") else (None,)
            if layer is not None:
                name = ".".join(["blocks", layer, arch.ops[int(layer)], *rest])
            assert torch.equal(own[name], tensor)


def test_pruned_supernet_equals_parent_for_surviving_archs():
    sp = get_space("basic")
    parent = _randomise(Supernet(sp, PROXY, 10), 3)
    rng = np.random.default_rng(4)
    kept = [
        ops if len(ops) < 4 else tuple(rng.choice(ops, 3, replace=False)) for ops in sp.layer_ops
    ]
    pruned_space = sp.with_layer_ops(kept)
    child = parent.pruned(pruned_space).eval()
    assert child.space == pruned_space
    assert sum(p.numel() for p in child.parameters()) < sum(p.numel() for p in parent.parameters())
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        for _ in range(4):
            arch = pruned_space.sample(rng)
            assert torch.equal(child(x, arch), parent(x, arch))
    with pytest.raises(ValueError, match="not in the parent"):
        child.pruned(sp)


def test_path_modules_cover_exactly_the_path():
    sp = get_space("basic")
    net = Supernet(sp, PROXY, 10)
    arch = sp.sample(np.random.default_rng(6))
    used = {id(p) for m in net.path_modules(arch) for p in m.parameters()}
    x = torch.randn(2, 3, 32, 32)
    net(x, arch).sum().backward()
    with_grad = {id(p) for p in net.parameters() if p.grad is not None}
    assert with_grad == used


def test_entangled_init_nests_ops_and_zero_residual_makes_identity():
    sp = get_space("basic")
    net = init_weights(Supernet(sp, PROXY, 10), 0, entangle=True, zero_residual=True)
    block = net.blocks[2]  # 8 -> 8 channels, stride 1: residual layer with all ops
    small, big = block["K3E3"], block["K7E6"]
    dw_small = small.depthwise.conv.weight
    dw_big = big.depthwise.conv.weight
    assert torch.equal(dw_small, dw_big[: dw_small.shape[0], :, 2:5, 2:5])
    assert torch.equal(small.project.conv.weight, big.project.conv.weight[:, : dw_small.shape[0]])
    x = torch.randn(4, 8, 16, 16)
    net.train()
    for op in sp.layer_ops[2]:
        assert torch.equal(block[op](x), x)  # zero-initialised last BN: identity at step 0
    residual = [m for m in net.modules() if isinstance(m, IBConv) and m.residual]
    assert residual and all(m.project.bn.weight.abs().sum() == 0 for m in residual)


def _deployed_residual_layers(sp) -> set[int]:
    """Layers whose full-width, 224-px block (as the latency table measures it:
    :func:`build_op` at the deployed shapes, residual wherever they allow one) adds its input."""
    out = set()
    for j, (spec, ops) in enumerate(zip(sp.layers, sp.layer_ops, strict=True)):
        op = next(op for op in ops if op != IDENTITY)
        if build_op(op, spec.in_chs, spec.out_chs, spec.stride, spec.act).residual:
            out.add(j)
    return out


@pytest.mark.parametrize("family", SPACE_NAMES)
@pytest.mark.parametrize("width", [0.1, 0.25, 0.35, 0.5, 1.0])
@pytest.mark.parametrize("dropped", [0, 2])
def test_proxy_supernet_has_the_deployed_residual_layers(family, width, dropped):
    """Also where dropped strides leave a deployed stride-2 layer at stride 1 on equal widths."""
    sp = get_space(family)
    proxy = Proxy(32, width, dropped)
    deployed = _deployed_residual_layers(sp)
    net = Supernet(sp, proxy, 10)
    for j, block in enumerate(net.blocks):
        flags = {op: m.residual for op, m in block.items() if isinstance(m, IBConv)}
        assert set(flags.values()) == {j in deployed}, (family, width, j, flags)
    child = ChildNet(sp, sp.sample(np.random.default_rng(0)), proxy, 10)
    for j, block in enumerate(child.blocks):
        if isinstance(block, IBConv):
            assert block.residual == (j in deployed), (family, width, j)


@pytest.mark.parametrize("family", SPACE_NAMES)
def test_dropped_strides_keep_the_maps_large_and_the_path_equal_to_its_child(family):
    sp = get_space(family)
    proxy = Proxy(32, 0.25, 2)
    net = _randomise(Supernet(sp, proxy, 10), 3)
    arch = sp.sample(np.random.default_rng(4))
    x = torch.randn(2, 3, 32, 32)
    sizes = []
    hooks = [
        b[op].register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
        for b, op in zip(net.blocks, arch.ops, strict=True)
    ]
    out = net(x, arch)
    for h in hooks:
        h.remove()
    assert out.shape == (2, 10)
    assert net.stem.conv.stride == (1, 1)
    assert sizes == list(proxy.map_sizes([s.stride for s in sp.layers]))
    assert min(sizes) == 4
    with torch.no_grad():
        assert torch.allclose(net.extract(arch).eval()(x), out, atol=1e-5)


def test_rounded_widths_would_have_added_residuals():
    """The case the rule is for: at width 0.25 the basic space's 32->16 and 80->96 layers
    round to equal widths, and still take no residual."""
    sp = get_space("basic")
    _, _, shapes, _ = layer_shapes(sp, Proxy(32, 0.25))
    equal_rounded = {j for j, (i, o, s) in enumerate(shapes) if s == 1 and i == o}
    extra = equal_rounded - _deployed_residual_layers(sp)
    assert {(sp.layers[j].in_chs, sp.layers[j].out_chs) for j in extra} == {(32, 16), (80, 96)}
    net = Supernet(sp, Proxy(32, 0.25), 10)
    assert not any(m.residual for j in extra for m in net.blocks[j].values())


@pytest.mark.parametrize("family", SPACE_NAMES)
@pytest.mark.parametrize("resolution", [32, 64])
def test_folded_inference_gives_the_eval_mode_logits(family, resolution):
    """``infer`` folds each BN into its conv: the logits of ``forward`` in eval mode, to float
    rounding, for every op kind of every space (SE, h-swish, identity, kernels cropped on the
    1x1 and 2x2 maps of a 32-px proxy), in either memory layout."""
    sp = get_space(family)
    net = _randomise(Supernet(sp, Proxy(resolution, 0.25), 10), 5)
    x = torch.randn(3, 3, resolution, resolution, generator=torch.Generator().manual_seed(6))
    rng = np.random.default_rng(7)
    archs = [sp.sample(rng) for _ in range(3)]
    with torch.inference_mode():
        for arch in archs:
            want = net(x, arch)
            assert torch.allclose(net.infer(x, arch), want, rtol=1e-4, atol=1e-5)
            cl = x.contiguous(memory_format=torch.channels_last)
            assert torch.allclose(net.infer(cl, arch), want, rtol=1e-4, atol=1e-5)
        # new running statistics (a recalibration) are folded afresh: nothing is cached
        before = net.infer(x, archs[0])
        net.head.conv.bn.running_mean.add_(1.0)
        after = net.infer(x, archs[0])
        assert not torch.allclose(after, before)
        assert torch.allclose(after, net(x, archs[0]), rtol=1e-4, atol=1e-5)


def test_folded_inference_refuses_batch_statistics():
    net = Supernet(get_space("basic"), PROXY, 10).train()
    arch = get_space("basic").sample(np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="eval mode"):
        net.infer(torch.zeros(2, 3, 32, 32), arch)

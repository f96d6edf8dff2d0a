"""Training: presets, exact resume, 2-process DDP, stand-alone training, checkpoint safety."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from padnas.data.datasets import TensorSplit, load_data
from padnas.run.settings import PRESETS
from padnas.space import get_space
from padnas.train.checkpoint import CheckpointError, load_checkpoint, load_child, load_supernet
from padnas.train.config import Stage
from padnas.train.loop import build_supernet, train_arch, train_supernet

torch.set_num_threads(1)  # a shared 2-core machine: two OpenMP threads stall when one is taken

# 256 training images in batches of 64: 4 steps per epoch
# uniform SPOS sampling from the first step (the preset's warm-up has tests of its own)
CFG = PRESETS["quick"].train.replace(batch_size=64, ckpt_every_steps=3, warmup_epochs=0)


def tiny_data():
    d = load_data("digits", 32, seed=0)
    t = d.train
    return dataclasses.replace(d, train=TensorSplit(t.images[:256], t.labels[:256], t.mean, t.std))


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _changed_ops(before: dict, after: dict) -> list[set[str]]:
    """Per layer, the ops whose tensors differ between two supernet state dicts."""
    out = [set() for _ in range(22)]
    for k in before:
        parts = k.split(".")
        if parts[0] == "blocks" and not torch.equal(before[k], after[k]):
            out[int(parts[1])].add(parts[2])
    return out


def _scheduled_ops(sp, seed: int, steps: int, steps_per_epoch: int = 4) -> list[set[str]]:
    """Per layer, the ops of the paths that (seed, epoch, step) prescribe."""
    out = [set() for _ in range(sp.num_layers)]
    for g in range(steps):
        arch = sp.sample(np.random.default_rng([seed, *divmod(g, steps_per_epoch)]))
        for j, op in enumerate(arch.ops):
            out[j].add(op)
    return out


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_presets_follow_section_4_1():
    paper = PRESETS["paper"].train
    assert (paper.batch_size, paper.momentum, paper.weight_decay) == (1024, 0.9, 4e-5)
    assert paper.supernet_stages == (Stage(120, 0.5), Stage(80, 0.1), Stage(40, 0.1))
    assert paper.supernet_epochs_total == paper.standalone.epochs == 240
    assert paper.standalone.lr == 0.5 and paper.resolution == 224 and paper.width_mult == 1.0
    quick = PRESETS["quick"].train
    assert quick.resolution % 32 == 0 and quick.width_mult < 1
    assert quick.supernet_stage(7) == quick.supernet_stages[-1]
    assert type(quick).from_dict(quick.to_dict()) == quick


class _Stop(Exception):
    pass


def test_interrupted_and_resumed_training_is_bit_identical(tmp_path):
    data, sp = tiny_data(), get_space("basic")
    whole = build_supernet(sp, CFG, data.num_classes, seed=0)
    train_supernet(whole, data, CFG, tmp_path / "a", seed=0, epochs=2, progress=False)

    def stop_at_7(step, loss):
        if step == 7:  # the last checkpoint was written after step 6 (every 3 steps)
            raise _Stop

    first = build_supernet(sp, CFG, data.num_classes, seed=0)
    with pytest.raises(_Stop):
        train_supernet(
            first, data, CFG, tmp_path / "b", seed=0, epochs=2, on_step=stop_at_7, progress=False
        )
    assert load_checkpoint(tmp_path / "b")["global_step"] == 6
    fresh = build_supernet(sp, CFG, data.num_classes, seed=0)  # a new process, in effect
    train_supernet(fresh, data, CFG, tmp_path / "b", seed=0, epochs=2, progress=False)
    _assert_same(_state(whole), _state(fresh))
    ca, cb = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert ca["done"] and cb["done"] and ca["global_step"] == cb["global_step"] == 8
    for sa, sb in zip(
        ca["optimizer"]["state"].values(), cb["optimizer"]["state"].values(), strict=True
    ):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    # a finished checkpoint is loaded, not retrained; the stored supernet is the trained one
    again = build_supernet(sp, CFG, data.num_classes, seed=1)
    train_supernet(again, data, CFG, tmp_path / "a", seed=0, epochs=2, progress=False)
    _assert_same(_state(whole), _state(again))
    loaded, meta = load_supernet(tmp_path / "a")
    _assert_same(_state(whole), _state(loaded))
    assert meta["kind"] == "supernet" and meta["space"]["signature"] == sp.signature
    with pytest.raises(CheckpointError, match="holds a supernet, not a stand-alone network"):
        load_child(tmp_path / "a")
    # a checkpoint of another training is refused, naming the difference
    with pytest.raises(CheckpointError, match="lr"):
        train_supernet(again, data, CFG, tmp_path / "a", seed=0, epochs=2, lr=0.1, progress=False)
    # ... and so is one of the other mode: a training never mixes deterministic and normal
    assert ca["meta"]["deterministic"] is False
    ca["meta"]["deterministic"] = True
    torch.save(ca, tmp_path / "a" / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=r"trained with --deterministic.*cannot mix modes"):
        train_supernet(again, data, CFG, tmp_path / "a", seed=0, epochs=2, progress=False)


def test_training_updates_only_the_sampled_paths(tmp_path):
    data, sp = tiny_data(), get_space("basic")
    net = build_supernet(sp, CFG, data.num_classes, seed=0)
    before = _state(net)
    train_supernet(net, data, CFG, tmp_path, seed=0, epochs=1, progress=False)
    after = _state(net)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.startswith("stem.") for k in changed) and any(
        k.startswith("head.") for k in changed
    )
    # exactly the ops of the 4 scheduled paths moved; every other op kept its weights
    scheduled = _scheduled_ops(sp, seed=0, steps=4)
    assert _changed_ops(before, after) == [ops - {"ID"} for ops in scheduled]
    log = (tmp_path / "train_log.jsonl").read_text().splitlines()
    assert len(log) == 1 and '"epoch":1' in log[0]


def test_fair_paths_cover_every_op_of_every_layer():
    sp = get_space("basic")
    genomes = sp.fair_genomes(np.random.default_rng(3))
    assert genomes.shape == (max(sp.num_ops), sp.num_layers)
    for j, n in enumerate(sp.num_ops):
        assert set(genomes[:, j]) == set(range(n))  # each op at least once
    again = sp.fair_genomes(np.random.default_rng(3))
    assert (genomes == again).all()  # a function of the generator only


def _train_one_epoch_counting_passes(sp, sampler: str, tmp_path):
    """(weights before, the supernet, forward passes) of one 4-step epoch with ``sampler``."""
    data = tiny_data()
    cfg = CFG.replace(sampler=sampler, ckpt_every_steps=0)
    net = build_supernet(sp, cfg, data.num_classes, seed=0)
    before = _state(net)
    calls = []
    stem_forward = net.stem.forward
    net.stem.forward = lambda x: calls.append(1) or stem_forward(x)
    train_supernet(net, data, cfg, tmp_path, seed=0, epochs=1, progress=False)
    return before, net, len(calls)


def test_the_fair_sampler_trains_every_op_each_step_and_is_recorded(tmp_path):
    sp = get_space("basic")
    before, net, passes = _train_one_epoch_counting_passes(sp, "fair", tmp_path)
    assert passes == 4 * max(sp.num_ops)  # 4 steps, one pass per fair path
    # after one step group every op of every layer has moved (identity has no weights)
    changed = _changed_ops(before, _state(net))
    assert changed == [set(ops) - {"ID"} for ops in sp.layer_ops]
    meta = load_checkpoint(tmp_path / "checkpoint.pt")["meta"]
    assert meta["config"]["sampler"] == "fair"


def test_grow_op_copies_a_smaller_op_exactly_and_refuses_a_larger_one():
    from padnas.nn.initialize import grow_op
    from padnas.nn.ops import IBConv

    torch.manual_seed(0)
    small, big = IBConv(8, 16, 3, 3, residual=False), IBConv(8, 16, 7, 6, residual=False)
    for m in small.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_()
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    assert grow_op(small, big)
    x = torch.randn(4, 8, 10, 10)
    for mode in (True, False):  # batch statistics and running statistics alike
        small.train(mode)
        big.train(mode)
        assert torch.allclose(small(x), big(x), atol=1e-5)
    before = _state(small)
    assert not grow_op(big, small)  # a smaller kernel or hidden width cannot hold it
    _assert_same(before, _state(small))


def test_warmup_trains_each_transition_layers_smallest_op_then_grows_the_others(tmp_path):
    from padnas.train.loop import grow_transitions, warmup_ops

    data, sp = tiny_data(), get_space("basic")
    cfg = CFG.replace(warmup_epochs=1, ckpt_every_steps=0)
    warm = warmup_ops(sp)
    assert sorted(warm) == [j for j, s in enumerate(sp.layers) if not s.residual]
    assert all(sp.layer_ops[j][i] in ("K3E1", "K3E3") for j, i in warm.items())
    net = build_supernet(sp, cfg, data.num_classes, seed=0)
    before = _state(net)
    train_supernet(net, data, cfg, tmp_path, seed=0, epochs=1, progress=False)
    changed = _changed_ops(before, _state(net))
    for j, i in warm.items():
        assert changed[j] == {sp.layer_ops[j][i]}, j  # the warm-up op alone moved
    grow_transitions(net, warm)
    net.eval()
    x = torch.randn(2, 8, 16, 16)
    j = 1  # the first transition layer at stride 2: 8 -> 8 channels at width 0.25
    outs = [net.blocks[j][op](x) for op in sp.layer_ops[j]]
    assert all(torch.allclose(outs[0], o, atol=1e-5) for o in outs[1:])


@pytest.mark.parametrize("stop", [4, 5, 7])  # at the warm-up's end (checkpoint after step 4)
def test_a_run_resumed_around_the_warmup_ends_bit_identical(tmp_path, stop):
    """Checkpoints every 2 steps, warm-up 1 epoch (4 steps): resuming from the checkpoint at the
    warm-up's end grows the ops then; resuming later finds them grown in the checkpoint."""
    data, sp = tiny_data(), get_space("basic")
    cfg = CFG.replace(warmup_epochs=1, ckpt_every_steps=2)
    whole = build_supernet(sp, cfg, data.num_classes, seed=0)
    train_supernet(whole, data, cfg, tmp_path / "a", seed=0, epochs=2, progress=False)

    def halt(step, loss):
        if step == stop:
            raise _Stop

    first = build_supernet(sp, cfg, data.num_classes, seed=0)
    with pytest.raises(_Stop):
        train_supernet(
            first, data, cfg, tmp_path / "b", seed=0, epochs=2, on_step=halt, progress=False
        )
    fresh = build_supernet(sp, cfg, data.num_classes, seed=0)
    train_supernet(fresh, data, cfg, tmp_path / "b", seed=0, epochs=2, progress=False)
    _assert_same(_state(whole), _state(fresh))


def test_a_finetune_has_no_warmup(tmp_path):
    """Stage > 0 finetunes a pruned supernet's trained ops: no op is fixed, none regrown."""
    data, sp = tiny_data(), get_space("basic")
    cfg = CFG.replace(warmup_epochs=5, ckpt_every_steps=0)
    net = build_supernet(sp, cfg, data.num_classes, seed=0)
    before = _state(net)
    train_supernet(net, data, cfg, tmp_path, seed=0, epochs=1, stage=1, progress=False)
    scheduled = _scheduled_ops(sp, seed=0, steps=4)
    assert _changed_ops(before, _state(net)) == [ops - {"ID"} for ops in scheduled]


@pytest.mark.parametrize(
    ("sampler", "paths", "genomes"),
    [
        ("sandwich", 4, lambda sp, rng: sp.sandwich_genomes(rng, 2)),
        ("transitions", 3, lambda sp, rng: sp.transition_genomes(rng, 2)),
    ],
)
def test_multi_path_samplers_train_exactly_their_paths(tmp_path, sampler, paths, genomes):
    """A step of the sandwich / transitions sampler makes one pass per path and moves exactly
    the ops of those paths (identity has no weights)."""
    sp = get_space("basic")
    before, net, passes = _train_one_epoch_counting_passes(sp, sampler, tmp_path)
    assert passes == 4 * paths  # 4 steps
    scheduled = [set() for _ in range(sp.num_layers)]
    for step in range(4):
        for g in genomes(sp, np.random.default_rng([0, 0, step])):
            for j, op in enumerate(sp.decode(g).ops):
                scheduled[j].add(op)
    assert _changed_ops(before, _state(net)) == [ops - {"ID"} for ops in scheduled]


def test_sandwich_and_transition_genomes():
    sp = get_space("basic")
    rng = np.random.default_rng(5)
    largest, smallest, *rest = (sp.decode(g) for g in sp.sandwich_genomes(rng, 2))
    assert len(rest) == 2
    assert largest.ops[0] == "K7E1" and set(largest.ops[1:]) == {"K7E6"}
    assert smallest.ops[0] == "K3E1"
    for j, op in enumerate(smallest.ops[1:], 1):
        assert op == ("ID" if "ID" in sp.layer_ops[j] else "K3E3"), j
    g = sp.transition_genomes(np.random.default_rng(5), 2)
    assert g.shape == (3, sp.num_layers)
    moved = {j for j in range(sp.num_layers) if len(set(g[:, j])) > 1}
    assert moved and moved <= set(sp.transition_layers)


def test_dropped_strides_are_kept_with_the_checkpoint_and_older_ones_resume(tmp_path):
    data, sp = tiny_data(), get_space("basic")
    cfg = CFG.replace(dropped_strides=2, ckpt_every_steps=0)
    net = build_supernet(sp, cfg, data.num_classes, seed=0)
    train_supernet(net, data, cfg, tmp_path / "d2", seed=0, epochs=1, progress=False)
    loaded, _ = load_supernet(tmp_path / "d2" / "checkpoint.pt")
    assert loaded.proxy == cfg.proxy() and loaded.stem.conv.stride == (1, 1)
    other = build_supernet(sp, CFG, data.num_classes, seed=0)
    with pytest.raises(CheckpointError, match=r"another training.*proxy"):
        train_supernet(other, data, CFG, tmp_path / "d2", seed=0, epochs=1, progress=False)
    # a checkpoint written before dropped strides existed names none: it is a 0, and resumes
    net = build_supernet(sp, CFG, data.num_classes, seed=0)
    train_supernet(net, data, CFG, tmp_path / "old", seed=0, epochs=1, progress=False)
    path = tmp_path / "old" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=False)
    del ckpt["meta"]["proxy"]["dropped_strides"]
    torch.save(ckpt, path)
    again = build_supernet(sp, CFG, data.num_classes, seed=1)
    train_supernet(again, data, CFG, tmp_path / "old", seed=0, epochs=1, progress=False)
    _assert_same(_state(again), _state(net))  # the finished training, loaded


def test_an_unknown_sampler_is_refused(tmp_path):
    data, sp = tiny_data(), get_space("basic")
    net = build_supernet(sp, CFG, data.num_classes, seed=0)
    with pytest.raises(Exception, match="unknown sampler 'greedy'"):
        train_supernet(
            net, data, CFG.replace(sampler="greedy"), tmp_path, seed=0, epochs=1, progress=False
        )


def _ddp_worker(rank: int, world: int, tmp: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank, world_size=world)
    try:
        data, sp = tiny_data(), get_space("basic")
        net = build_supernet(sp, CFG, data.num_classes, seed=0)
        train_supernet(net, data, CFG, f"{tmp}/ckpt", seed=0, epochs=1, progress=False)
        torch.save(net.state_dict(), f"{tmp}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_ddp_ends_with_identical_weights(tmp_path):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    _assert_same(r0, r1)
    sp = get_space("basic")
    init = build_supernet(sp, CFG, 10, seed=0).state_dict()
    assert not torch.equal(init["head.classifier.weight"], r0["head.classifier.weight"])
    # both ranks followed the same seeded paths: only their ops moved
    assert _changed_ops(init, r0) == [ops - {"ID"} for ops in _scheduled_ops(sp, 0, 4)]
    _assert_same(r0, load_checkpoint(tmp_path / "ckpt")["model"])  # rank 0 wrote it


def test_standalone_training_and_reload(tmp_path):
    data, sp = tiny_data(), get_space("basic")
    arch = "K3E1-" + "-".join(["K5E3"] * 21)
    net = train_arch(sp, arch, data, CFG, tmp_path, seed=0, epochs=1, progress=False)
    loaded, meta = load_child(tmp_path)
    assert meta["kind"] == "child" and meta["arch"] == arch
    x = data.val.fetch(range(8))[0].to(memory_format=torch.channels_last)
    loaded.to(memory_format=torch.channels_last)  # the layout training used (same values)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), loaded.eval()(x))
    with pytest.raises(CheckpointError, match="holds a stand-alone network, not a supernet"):
        load_supernet(tmp_path)

"""An ONNX graph read as a layer-list network, so a user's model file is priced like a NET.json.

Reading goes in two passes. The first walks the graph from its input to its output and turns each
node group into a *piece*: a conv (Conv, with a BatchNormalization if the exporter did not fold
it, and its activation), a channel shuffle (Reshape -> Transpose -> Reshape, or one Gather), a
squeeze-excite branch (pool -> 1x1 conv or FC -> act -> 1x1 conv or FC -> gate -> Mul), a global
pool, a strided max or average pooling window, a fully connected layer (Gemm, or MatMul + Add)
and a *fork*: where a tensor feeds several branches (or a Split, Slices or Gathers cut its
channels into several), each branch is walked on its own to the one Add or Concat where they all
meet again, and the fork records the branches' pieces. The second pass groups pieces into the
layers of :mod:`latency.networks.description`: a depthwise conv followed by an optional
squeeze-excite and a *linear* 1x1 conv is an inverted bottleneck, which takes the 1x1 conv before
it as its expand conv when that conv has the same activation (and the channel shuffle between
them); an Add fork is a residual inverted bottleneck or a ResNet basic block; a Concat fork
followed by a two-group channel shuffle is a ShuffleNetV2 unit.

The result goes through the same validation as a hand-written description. A node that fits no
pattern is refused with its name and op type, never skipped: a graph is priced whole or not at all.
Two graphs that compute the same thing read the same: a 1x1 conv followed by an expansion-1 block
with the same activation is read as one expanding block, a squeeze-excite written with Linear
layers reads as the one written with 1x1 convs, and a conv's bias is not recorded (exporters fold
BatchNorm into it, so it cannot be told from a BatchNorm).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from latency.networks.checks import network_from_dict
from latency.networks.description import Network
from latency.networks.onnx_graph import Node, OnnxGraph, UnsupportedGraph

_POOLS = ("ReduceMean", "GlobalAveragePool")
_FLATTENS = ("Flatten", "Reshape", "Squeeze")
_WINDOWS = {"MaxPool": "maxpool", "AveragePool": "avgpool"}
_JOINS = ("Add", "Concat")


def read_onnx(path: str | Path, name: str | None = None) -> Network:
    """The network an ONNX file computes, as a validated layer list (identity ops vanish in
    export, so none appear). Raises :class:`UnsupportedGraph` naming the first node it cannot
    map."""
    graph = OnnxGraph(path)
    shape = graph.shape(graph.input, Node("input", "graph input", (), (graph.input,)))
    if len(shape) != 4:
        raise UnsupportedGraph(
            f"{graph.path.name}: the input has shape {list(shape)}; a network description needs "
            "an NCHW image input"
        )
    try:
        pieces = _Walker(graph).walk()
    except RecursionError:
        raise UnsupportedGraph(
            f"{graph.path.name}: its branches nest too deeply to be read as blocks"
        ) from None
    layers = _group(pieces)
    _, in_chs, h, w = shape
    data = {
        "source": f"ONNX graph {graph.path.name}",
        "input": h if h == w else [h, w],
        "in_chs": in_chs,
        "layers": layers,
    }
    return network_from_dict(name or graph.path.stem, data)


# ---- pass 1: nodes -> pieces ------------------------------------------------------------------


class _Walker:
    """Follows the data path from the graph's input to its output; where it forks, follows each
    branch to the Add or Concat that joins them (squeeze-excite branches rejoin at their Mul)."""

    def __init__(self, graph: OnnxGraph) -> None:
        self.g = graph
        # a graph whose branches nest as blocks is walked with each node visited once; one
        # whose forks cross (a hostile ladder) would be walked again for every path through it
        self.steps_left = 4 * len(graph.nodes) + 16

    def walk(self) -> list[dict]:
        pieces: list[dict] = []
        _, join = self._chain(self.g.input, pieces)
        if join is not None:
            raise UnsupportedGraph(
                f"{join.where()}: joins tensors that do not fork from one tensor; only residual "
                "blocks and ShuffleNetV2 units may branch"
            )
        return pieces

    def _chain(self, cur: str, pieces: list[dict]) -> tuple[str, Node | None]:
        """Walk from ``cur``, appending pieces, to the graph output (join None) or to the join
        that takes the tensor reached (the end of a branch): ``(last tensor, join)``."""
        g = self.g
        while cur != g.output:
            self.steps_left -= 1
            if self.steps_left < 0:
                raise UnsupportedGraph(
                    f"{g.path.name}: its branches cross instead of nesting as residual blocks or "
                    "ShuffleNetV2 units (walking them does not end)"
                )
            users = g.users(cur)
            if not users:
                raise UnsupportedGraph(f"{g.path.name}: tensor {cur!r} leads nowhere")
            if len(users) == 1 and self._is_join(users[0]):
                return cur, users[0]
            if len(users) > 1 or users[0].op == "Split":
                cur = self._fork(cur, users, pieces)
            else:
                cur = self._step(cur, users[0], pieces)
        return cur, None

    def _is_join(self, node: Node) -> bool:
        """An Add or Concat of data tensors (an Add of a constant is a bias, not a join)."""
        return node.op in _JOINS and not any(t in self.g.consts for t in node.inputs)

    def _step(self, cur: str, node: Node, pieces: list[dict]) -> str:
        if node.op == "Conv":
            return self._conv(cur, node, pieces)
        if node.op in _POOLS:
            return self._pool(cur, node, pieces)
        if node.op in _WINDOWS:
            return self._window(cur, node, pieces)
        if node.op in ("Gemm", "MatMul"):
            return self._fc(cur, node, pieces)
        if node.op == "Reshape":
            return self._shuffle(cur, node, pieces)
        if node.op == "Gather":
            return self._gather_shuffle(cur, node, pieces)
        raise UnsupportedGraph(
            f"{node.where()} cannot be mapped to a layer (supported: Conv, BatchNormalization, "
            "Relu, Clip(0,6), HardSwish, HardSigmoid, Sigmoid/Mul (swish), MaxPool, AveragePool, "
            "residual Add, Split/Slice/Gather + Concat (ShuffleNetV2), channel shuffle, "
            "squeeze-excite, global pooling, Gemm/MatMul)"
        )

    # ---- forks ----------------------------------------------------------------------------------

    def _fork(self, cur: str, users: list[Node], pieces: list[dict]) -> str:
        """A tensor feeding several nodes (or a Split): a squeeze-excite, or branches walked
        each to the join where they all meet; appends one fork piece, returns the join's output
        (after its activation, for an Add)."""
        g = self.g
        if len(users) == 2 and {n.op for n in users} in ({pool, "Mul"} for pool in _POOLS):
            return self._squeeze_excite(cur, users, pieces)
        branches = []
        for rng, first, tensor in self._branch_starts(cur, users):
            walked: list[dict] = []
            if first is None:  # a channel range of cur, cut by a Split, Slice or Gather
                end, join = self._chain(tensor, walked)
            elif self._is_join(first):  # cur itself joins: an identity branch
                end, join = cur, first
            else:
                end, join = self._chain(self._step(cur, first, walked), walked)
            branches.append({"range": rng, "pieces": walked, "end": end, "join": join})
        joins = {b["join"].name if b["join"] else None for b in branches}
        if len(joins) != 1 or None in joins:
            names = ", ".join(n.where() for n in users)
            raise UnsupportedGraph(
                f"tensor {cur!r} forks into {names}, and the branches do not meet again in one "
                "Add or Concat: not a residual block or ShuffleNetV2 unit"
            )
        join = branches[0]["join"]
        branches = self._in_join_order(cur, join, branches)
        rank = len(g.shape(join.out, join))
        if join.op == "Concat" and (rank != 4 or join.attrs.get("axis", 0) % rank != 1):
            raise UnsupportedGraph(f"{join.where()}: only a concat of channels (axis 1) is mapped")
        if join.op == "Add" and len({g.shape(t, join) for t in join.inputs}) != 1:
            raise UnsupportedGraph(f"{join.where()}: a residual add of tensors of different sizes")
        act, out = None, join.out
        if join.op == "Add":
            act, out, _ = g.activation(join.out)
        pieces.append(
            {
                "kind": "fork",
                "node": join.name,
                "op": join.op,
                "branches": [{"range": b["range"], "pieces": b["pieces"]} for b in branches],
                "act": act,
                "cin": g.shape(cur, join)[1],
            }
        )
        return out

    def _branch_starts(self, cur: str, users: list[Node]) -> list:
        """``(channel range or None, first node, first tensor)`` of each branch from ``cur``:
        a Split output, a Slice or a Gather starts a branch at its output tensor with its
        channel range; any other node starts one at itself."""
        g = self.g
        if users[0].op == "Split" and len(users) == 1:
            split = users[0]
            if split.attrs.get("axis", 0) % max(len(g.shape(cur, split)), 1) != 1:
                raise UnsupportedGraph(f"{split.where()}: only a split of channels (axis 1)")
            starts, at = [], 0
            for t in split.outputs:
                chs = g.shape(t, split, 4)[1]
                starts.append(((at, at + chs), None, t))
                at += chs
            return starts
        return [
            (self._channel_range(cur, n), None, n.out)
            if n.op in ("Slice", "Gather")
            else (None, n, None)
            for n in users
        ]

    def _channel_range(self, cur: str, node: Node) -> tuple[int, int]:
        """The channels ``[start, end)`` a Slice (steps of 1) or a Gather (of consecutive
        channels) keeps of a 4-D tensor."""
        g = self.g
        chs = g.shape(cur, node, 4)[1]
        if node.op == "Gather":
            kept = g.const(node.inputs[1], node, "indices") if node.inputs[0] == cur else None
            if kept is not None and kept.ndim == 1 and len(kept):
                kept = kept.astype(np.int64) % chs  # a negative index counts from the end
                start = int(kept[0])
                if node.attrs.get("axis", 0) % 4 == 1 and np.array_equal(
                    kept, np.arange(start, start + len(kept))
                ):
                    return start, start + len(kept)
            raise UnsupportedGraph(
                f"{node.where()}: only a Gather of consecutive channels (axis 1) starts a branch"
            )
        names = ("starts", "ends", "axes", "steps")
        if "starts" in node.attrs:  # opset < 10: attributes, not inputs
            args = {k: list(node.attrs[k]) for k in names if k in node.attrs}
        else:
            inputs = zip(names, node.inputs[1:], strict=False)
            args = {k: g.const(t, node, k).reshape(-1).tolist() for k, t in inputs if t}
        axes = args.get("axes", list(range(len(args["starts"]))))
        if (
            [a % 4 for a in axes] != [1]
            or args.get("steps", [1]) != [1]
            or len(args["starts"]) != 1
            or len(args.get("ends", ())) != 1
        ):
            raise UnsupportedGraph(
                f"{node.where()}: only a slice of channels (axis 1, step 1) starts a branch"
            )
        # ONNX clamps the bounds to the axis; a negative bound counts from its end
        start, end = (
            max(0, min(chs, v + chs if v < 0 else v)) for v in (args["starts"][0], args["ends"][0])
        )
        return start, end

    def _in_join_order(self, cur: str, join: Node, branches: list[dict]) -> list[dict]:
        """The branches in the order of the join's inputs; refuses a join that takes a tensor
        from outside the fork."""
        left, ordered = list(branches), []
        for t in join.inputs:
            b = next((b for b in left if b["end"] == t), None)
            if b is None:
                raise UnsupportedGraph(
                    f"{join.where()}: takes tensor {t!r}, which is not a branch of the fork at "
                    f"tensor {cur!r}"
                )
            left.remove(b)
            ordered.append(b)
        if left:
            raise UnsupportedGraph(f"{join.where()}: a branch of the fork at {cur!r} is not joined")
        return ordered

    # ---- layers on the data path --------------------------------------------------------------

    def _conv_core(self, cur: str, node: Node) -> tuple[dict, str]:
        """A Conv (+ BatchNormalization) as a piece without activation; returns it and its
        output tensor. Its weight must agree with its input, its group count and its output
        (a file may claim anything: the weight is what the file holds)."""
        g = self.g
        if node.inputs[0] != cur:
            raise UnsupportedGraph(f"{node.where()}: the data path must be its first input")
        weight = g.const(node.inputs[1], node, "weight")
        if weight.ndim != 4:
            raise UnsupportedGraph(
                f"{node.where()}: weight {node.inputs[1]!r} has shape {list(weight.shape)}; a 2-D "
                "convolution's weight is (out channels, in channels / group, kh, kw)"
            )
        cout, per_group, kh, kw = (int(d) for d in weight.shape)
        strides = _pair(node, "strides", (1, 1))
        if "kernel_shape" in node.attrs and _pair(node, "kernel_shape", ()) != (kh, kw):
            raise UnsupportedGraph(
                f"{node.where()}: kernel_shape {list(node.attrs['kernel_shape'])} disagrees with "
                f"its weight {node.inputs[1]!r} of shape {list(weight.shape)}"
            )
        if kh != kw or kh % 2 == 0 or len(set(strides)) != 1:
            raise UnsupportedGraph(
                f"{node.where()}: only square odd kernels with equal strides are supported "
                f"(kernel {kh}x{kw}, strides {list(strides)})"
            )
        if _pair(node, "dilations", (1, 1)) != (1, 1):
            raise UnsupportedGraph(f"{node.where()}: dilated convolutions are not supported")
        (_, cin, h, w), out_shape = g.shape(cur, node, 4), g.shape(node.out, node, 4)
        groups = node.attrs.get("group", 1)
        if groups < 1 or cin % groups or cout % groups or per_group * groups != cin:
            raise UnsupportedGraph(
                f"{node.where()}: weight {node.inputs[1]!r} of shape {list(weight.shape)} with "
                f"group {groups} does not take its input {cur!r} of {cin} channels (in channels "
                "= weight's second dimension x group, and group must divide the out channels)"
            )
        if out_shape[1] != cout:
            raise UnsupportedGraph(
                f"{node.where()}: its output {node.out!r} is declared with {out_shape[1]} "
                f"channels, but its weight {node.inputs[1]!r} makes {cout}"
            )
        self._check_vector(node, node.inputs[2:3], cout, "bias")
        s = strides[0]
        self._check_same(node, (h, w), out_shape, s)
        out = node.out
        bn = g.only_user(out)
        if bn is not None and bn.op == "BatchNormalization":
            self._check_vector(bn, bn.inputs[1:5], cout, "scale, bias, mean and variance")
            out = bn.out
        piece = {
            "kind": "conv",
            "node": node.name,
            "cin": cin,
            "cout": cout,
            "kernel": kh,
            "stride": s,
            "groups": groups,
        }
        return piece, out

    def _check_vector(self, node: Node, tensors, n: int, what: str) -> None:
        """Each constant of ``tensors`` (a bias, BatchNorm's statistics) holds one value per
        channel: ``n`` values, broadcast over the batch (a leading 1 allowed)."""
        for t in tensors:
            if not t or t not in self.g.consts:
                continue
            shape = self.g.consts[t].shape
            scalar = all(d == 1 for d in shape)
            if not scalar and (any(d != 1 for d in shape[:-1]) or shape[-1:] != (n,)):
                raise UnsupportedGraph(
                    f"{node.where()}: its {what} {t!r} has shape {list(shape)}; {n} values "
                    "(one per channel) are expected"
                )

    @staticmethod
    def _check_same(node: Node, hw: tuple[int, int], out_shape: tuple[int, ...], s: int) -> None:
        if tuple(out_shape[2:]) != (math.ceil(hw[0] / s), math.ceil(hw[1] / s)):
            raise UnsupportedGraph(
                f"{node.where()}: output {list(out_shape[2:])} from input {list(hw)} at stride "
                f"{s} is not 'SAME' padding (pad kernel//2 on each side)"
            )

    def _conv(self, cur: str, node: Node, pieces: list[dict]) -> str:
        piece, out = self._conv_core(cur, node)
        piece["act"], out, _ = self.g.activation(out)
        pieces.append(piece)
        return out

    def _window(self, cur: str, node: Node, pieces: list[dict]) -> str:
        """MaxPool / AveragePool over a square odd window padded kernel//2 (``SAME``)."""
        g = self.g
        (_, chs, h, w), out_shape = g.shape(cur, node, 4), g.shape(node.out, node, 4)
        kh, kw = _pair(node, "kernel_shape", (0, 0))
        strides = _pair(node, "strides", (1, 1))
        pads = tuple(node.attrs.get("pads", (0, 0, 0, 0)))
        if (
            kh != kw
            or kh % 2 == 0
            or len(set(strides)) != 1
            or pads != (kh // 2,) * 4
            or node.attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
            or _pair(node, "dilations", (1, 1)) != (1, 1)
            or len(node.outputs) > 1
        ):
            raise UnsupportedGraph(
                f"{node.where()}: only square odd windows with equal strides, padded kernel//2 on "
                f"each side, are mapped (kernel {kh}x{kw}, strides {list(strides)}, pads "
                f"{list(pads)})"
            )
        self._check_same(node, (h, w), out_shape, strides[0])
        kind = _WINDOWS[node.op]
        piece = {
            "kind": "window",
            "node": node.name,
            "type": kind,
            "cin": chs,
            "kernel": kh,
            "stride": strides[0],
        }
        if kind == "avgpool":
            # padded zeros only count where there is padding
            piece["count_pad"] = bool(node.attrs.get("count_include_pad", 0)) and kh > 1
        pieces.append(piece)
        return node.out

    def _squeeze_excite(self, cur: str, users: list[Node], pieces: list[dict]) -> str:
        """pool -> [flatten] -> (1x1 Conv | FC) -> act -> (1x1 Conv | FC) -> gate
        -> [Reshape/Unsqueeze back to 4-D] -> Mul with the pooled tensor."""
        g = self.g
        pool = next(n for n in users if n.op in _POOLS)
        mul = next(n for n in users if n.op == "Mul")
        self._check_pool(cur, pool)
        chain, t = [], pool.out
        for role in ("reduce", "expand"):
            node = g.only_user(t)
            if node is not None and node.op in _FLATTENS and len(g.shape(t, node)) == 4:
                if node.op != "Flatten" and g.shape(node.out, node)[-1:] != g.shape(t, node)[1:2]:
                    raise UnsupportedGraph(f"{node.where()}: does not flatten the pooled features")
                t, node = node.out, g.only_user(node.out)
            rank = len(g.shape(t, pool))
            if node is not None and node.op == "Conv" and rank == 4:
                piece, t = self._conv_core(t, node)
                ok = piece["kernel"] == 1
            elif node is not None and node.op in ("Gemm", "MatMul") and rank == 2:
                piece, t = self._fc_core(t, node)
                ok = True
            else:
                raise UnsupportedGraph(
                    f"{pool.where()}: a squeeze-excite needs a 1x1 Conv or a Gemm/MatMul after "
                    f"the pooling ({role})"
                )
            act, t, _ = g.activation(t)
            if not ok or act is None:
                raise UnsupportedGraph(
                    f"{node.where()}: the squeeze-excite {role} must be a 1x1 conv or FC with an "
                    "activation"
                )
            chain.append((piece, act))
        chs = g.shape(cur, mul)[1]
        if len(g.shape(t, mul)) == 2:
            back = g.only_user(t)
            if back is None or back.op not in ("Reshape", "Unsqueeze"):
                raise UnsupportedGraph(
                    f"{mul.where()}: the squeeze-excite gate must be reshaped to (1, {chs}, 1, 1)"
                )
            t = back.out
        if set(mul.inputs) != {cur, t} or g.shape(t, mul) != (1, chs, 1, 1):
            raise UnsupportedGraph(f"{mul.where()}: does not gate the squeeze-excite's input")
        (reduce, se_act), (_, se_gate) = chain
        pieces.append(
            {
                "kind": "se",
                "node": pool.name,
                "se_hidden": reduce["cout"],
                "se_act": se_act,
                "se_gate": se_gate,
            }
        )
        return mul.out

    def _check_pool(self, cur: str, node: Node) -> None:
        if node.op == "GlobalAveragePool":
            return
        axes = node.attrs.get("axes")
        if axes is None and len(node.inputs) > 1:  # opset 18: axes as an input
            axes = self.g.const(node.inputs[1], node, "axes").reshape(-1).tolist()
        rank = len(self.g.shape(cur, node))
        if rank != 4 or sorted(a % 4 for a in axes or ()) != [2, 3]:
            raise UnsupportedGraph(f"{node.where()}: only a mean over height and width is a pool")

    def _pool(self, cur: str, node: Node, pieces: list[dict]) -> str:
        self._check_pool(cur, node)
        out = node.out
        flat = self.g.only_user(out)
        if len(self.g.shape(out, node)) == 4:
            if flat is None or flat.op not in _FLATTENS:
                raise UnsupportedGraph(f"{node.where()}: the pooled features must be flattened")
            out = flat.out
        chs = self.g.shape(cur, node)[1]
        if self.g.shape(out, node) != (1, chs):
            raise UnsupportedGraph(f"{node.where()}: pooled features are not (batch, {chs})")
        pieces.append({"kind": "pool", "node": node.name, "cin": chs, "cout": chs})
        return out

    def _fc_core(self, cur: str, node: Node) -> tuple[dict, str]:
        """A Gemm, or MatMul (+ Add of a constant bias), as a piece without activation; its
        weight must take the input's features and make the output's."""
        g = self.g
        if node.inputs[0] != cur:
            raise UnsupportedGraph(f"{node.where()}: the features must be its first input")
        (_, cin), (_, cout) = g.shape(cur, node, 2), g.shape(node.out, node, 2)
        weight = g.const(node.inputs[1], node, "weight")
        if node.op == "Gemm" and node.attrs.get("transA", 0):
            raise UnsupportedGraph(f"{node.where()}: a Gemm of transposed features (transA)")
        want = (cout, cin) if node.op == "Gemm" and node.attrs.get("transB", 0) else (cin, cout)
        if weight.shape != want:
            raise UnsupportedGraph(
                f"{node.where()}: weight {node.inputs[1]!r} has shape {list(weight.shape)}, but "
                f"{cin} input features to {cout} outputs need {list(want)}"
            )
        out, bias = node.out, node.op == "Gemm" and len(node.inputs) > 2 and bool(node.inputs[2])
        self._check_vector(node, node.inputs[2:3], cout, "bias")
        add = g.only_user(out)
        if node.op == "MatMul" and add is not None and add.op == "Add":
            other = next((t for t in add.inputs if t != out), out)
            g.const(other, add, "bias")
            self._check_vector(add, [other], cout, "bias")
            out, bias = add.out, True
        return {"kind": "fc", "node": node.name, "cin": cin, "cout": cout, "bias": bias}, out

    def _fc(self, cur: str, node: Node, pieces: list[dict]) -> str:
        piece, out = self._fc_core(cur, node)
        piece["act"], out, _ = self.g.activation(out)
        pieces.append(piece)
        return out

    def _shuffle(self, cur: str, node: Node, pieces: list[dict]) -> str:
        """Reshape (N, g, C/g, H, W) -> Transpose(0, 2, 1, 3, 4) -> Reshape (N, C, H, W)."""
        g = self.g
        shape, five = g.shape(cur, node), g.shape(node.out, node)
        tr = g.only_user(node.out)
        back = g.only_user(tr.out) if tr is not None else None
        if (
            len(shape) != 4
            or len(five) != 5
            or five[1] * five[2] != shape[1]
            or tr is None
            or tr.op != "Transpose"
            or list(tr.attrs.get("perm", ())) != [0, 2, 1, 3, 4]
            or back is None
            or back.op != "Reshape"
            or g.shape(back.out, back) != shape
        ):
            raise UnsupportedGraph(
                f"{node.where()}: a Reshape is only mapped as part of a channel shuffle "
                "(Reshape to 5-D, Transpose 0,2,1,3,4, Reshape back)"
            )
        pieces.append({"kind": "shuffle", "node": node.name, "groups": five[1]})
        return back.out

    def _gather_shuffle(self, cur: str, node: Node, pieces: list[dict]) -> str:
        """A channel shuffle written as one Gather of the channels (how the ShuffleNetV2 unit
        of :mod:`latency.networks.blocks` exports): output channel ``i * g + j`` is input
        channel ``j * C / g + i`` for some group count ``g``."""
        g = self.g
        chs = g.shape(cur, node, 4)[1]
        order = g.const(node.inputs[1], node, "indices") if node.inputs[0] == cur else None
        groups = None
        if order is not None and node.attrs.get("axis", 0) % 4 == 1 and order.shape == (chs,):
            order = order.astype(np.int64) % chs
            groups = next(
                (
                    n
                    for n in range(2, chs + 1)
                    if chs % n == 0
                    and np.array_equal(order, np.arange(chs).reshape(n, -1).T.reshape(-1))
                ),
                None,
            )
        if groups is None:
            raise UnsupportedGraph(
                f"{node.where()}: a Gather is only mapped as a channel shuffle (axis 1, a "
                "constant permutation interleaving equal groups of channels)"
            )
        pieces.append({"kind": "shuffle", "node": node.name, "groups": groups})
        return node.out


def _pair(node: Node, name: str, default: tuple) -> tuple[int, ...]:
    """A 2-D window's attribute (kernel_shape, strides, dilations): two integers of at least
    1, or ``default`` when the node leaves it out."""
    if name not in node.attrs:
        return default
    value = tuple(node.attrs[name])
    if len(value) != 2 or any(v < 1 for v in value):
        raise UnsupportedGraph(
            f"{node.where()}: {name} {list(value)} must be two sizes of at least 1 (height, width)"
        )
    return value


# ---- pass 2: pieces -> layers -------------------------------------------------------------------


def _is_dw(p: dict) -> bool:
    return p["kind"] == "conv" and p["groups"] == p["cin"] == p["cout"] > 1


def _is_pw(p: dict, act: bool) -> bool:
    return (
        p["kind"] == "conv"
        and p["kernel"] == 1
        and p["stride"] == 1
        and not _is_dw(p)
        and (p["act"] is not None) == act
    )


def _group(pieces: list[dict]) -> list[dict]:
    """Pieces -> layer dicts, in order."""
    layers: list[dict] = []
    i = 0
    while i < len(pieces):
        n, layer = _layer_at(pieces, i)
        layers.append(layer)
        i += n
    return layers


def _layer_at(pieces: list[dict], i: int) -> tuple[int, dict]:
    """The layer starting at piece ``i`` and how many pieces it spans."""
    p = pieces[i]
    kind = p["kind"]
    if kind == "fork" and p["op"] == "Add":
        return 1, _residual(p)
    if kind == "fork":
        return 2, _shufflev2(p, pieces[i + 1] if i + 1 < len(pieces) else None)
    block = _ibconv_at(pieces, i)
    if block is not None:
        return block
    if kind == "conv" and _is_dw(p):
        return 1, {
            "type": "dwconv",
            "cin": p["cin"],
            "cout": p["cout"],
            "kernel": p["kernel"],
            "stride": p["stride"],
            "act": p["act"],
        }
    if kind == "conv":
        return 1, {
            "type": "conv",
            "cin": p["cin"],
            "cout": p["cout"],
            "kernel": p["kernel"],
            "stride": p["stride"],
            "groups": p["groups"],
            "act": p["act"],
        }
    if kind == "pool":
        return 1, {"type": "pool", "cin": p["cin"], "cout": p["cout"]}
    if kind == "window":
        layer = {k: v for k, v in p.items() if k not in ("kind", "node")}
        return 1, {**layer, "cout": p["cin"]}
    if kind == "fc":
        return 1, {
            "type": "fc",
            "cin": p["cin"],
            "cout": p["cout"],
            "act": p["act"],
            "bias": p["bias"],
        }
    what = {"shuffle": "channel shuffle", "se": "squeeze-excite"}.get(kind, kind)
    raise UnsupportedGraph(
        f"node {p['node']!r}: a {what} is only mapped inside an inverted bottleneck or a "
        "ShuffleNetV2 unit"
    )


def _residual(fork: dict) -> dict:
    """An Add fork: a basic block, or one inverted bottleneck with an identity shortcut."""
    branches = fork["branches"]
    if len(branches) == 2 and not any(b["range"] for b in branches):
        short, main = sorted((b["pieces"] for b in branches), key=len)
        block = _basicblock(short, main, fork["act"])
        if block is not None:
            return block
        if not short and fork["act"] is None:
            try:
                inner = _group(main)
            except UnsupportedGraph:
                inner = []
            if len(inner) == 1 and inner[0]["type"] == "ibconv":
                return {**inner[0], "residual": True}
    raise UnsupportedGraph(
        f"node {fork['node']!r} (Add): a residual add must enclose exactly one inverted "
        "bottleneck (expand conv, depthwise conv, squeeze-excite, linear 1x1 conv) or one basic "
        "block (kxk conv + act, kxk conv, identity or 1x1-conv shortcut, the act after the add)"
    )


def _basicblock(short: list[dict], main: list[dict], act: str | None) -> dict | None:
    """``kxk conv (stride) + act -> kxk conv`` beside the input or a 1x1 conv (stride), with
    ``act`` after the add; None when the branches are not that."""
    if len(main) != 2 or len(short) > 1:
        return None
    a, b = main
    if not all(p["kind"] == "conv" and p["groups"] == 1 for p in (*main, *short)):
        return None
    cout = b["cout"]
    if (
        a["kernel"] != b["kernel"]
        or a["act"] != act
        or b["act"] is not None
        or b["stride"] != 1
        or a["cout"] != cout
    ):
        return None
    if short:
        sc = short[0]
        if (sc["kernel"], sc["stride"], sc["act"]) != (1, a["stride"], None):
            return None
    return {
        "type": "basicblock",
        "cin": a["cin"],
        "cout": cout,
        "kernel": a["kernel"],
        "stride": a["stride"],
        "act": act,
        "projection": bool(short),
    }


def _shufflev2(fork: dict, after: dict | None) -> dict:
    """A Concat fork followed by a 2-group channel shuffle: ShuffleNetV2's unit, split in halves
    (stride 1) or fed whole to a depthwise branch and a 1x1 branch (strided)."""
    unit = None
    if after is not None and after["kind"] == "shuffle" and after["groups"] == 2:
        unit = _shufflev2_branches(fork)
    if unit is None:
        raise UnsupportedGraph(
            f"node {fork['node']!r} (Concat): a concat is only mapped as a ShuffleNetV2 unit "
            "(halves of a Split/Slice/Gather, or a depthwise + 1x1 branch beside a 1x1 + "
            "depthwise + 1x1 branch, concatenated in that order, then a channel shuffle of 2 "
            "groups)"
        )
    return unit


def _shufflev2_branches(fork: dict) -> dict | None:
    if len(fork["branches"]) != 2:
        return None
    (kept, rng1), (main, rng2) = ((b["pieces"], b["range"]) for b in fork["branches"])
    cin = fork["cin"]
    if rng1 is not None:  # stride 1: the first half passes, the second goes through the branch
        half = cin // 2
        if kept or cin % 2 or (rng1, rng2) != ((0, half), (half, cin)):
            return None
        chain = _shuffle_branch(main, half, half)
        if chain is None or chain[1] != 1:
            return None
        kernel, _, act = chain
        return {
            "type": "shufflev2",
            "cin": cin,
            "cout": cin,
            "kernel": kernel,
            "stride": 1,
            "act": act,
        }
    if rng2 is not None or len(kept) != 2:
        return None
    dw, pw = kept
    half = pw["cout"]
    chain = _shuffle_branch(main, cin, half)
    if chain is None:
        return None
    kernel, stride, act = chain
    if not (
        _is_dw(dw)
        and (dw["cin"], dw["kernel"], dw["stride"], dw["act"]) == (cin, kernel, stride, None)
        and _is_pw(pw, act=True)
        and (pw["cin"], pw["groups"], pw["act"]) == (cin, 1, act)
        and stride > 1
    ):
        return None
    return {
        "type": "shufflev2",
        "cin": cin,
        "cout": 2 * half,
        "kernel": kernel,
        "stride": stride,
        "act": act,
    }


def _shuffle_branch(pieces: list[dict], cin: int, half: int) -> tuple[int, int, str] | None:
    """``1x1 conv + act -> depthwise conv (linear) -> 1x1 conv + act`` from ``cin`` to ``half``
    channels: its ``(kernel, stride, act)``, or None."""
    if len(pieces) != 3:
        return None
    a, dw, b = pieces
    if not (
        _is_pw(a, act=True)
        and (a["cin"], a["cout"], a["groups"]) == (cin, half, 1)
        and _is_dw(dw)
        and (dw["cin"], dw["act"]) == (half, None)
        and _is_pw(b, act=True)
        and (b["cin"], b["cout"], b["groups"], b["act"]) == (half, half, 1, a["act"])
    ):
        return None
    return dw["kernel"], dw["stride"], a["act"]


def _ibconv_at(pieces: list[dict], i: int) -> tuple[int, dict] | None:
    """``[pw act] [shuffle] dw act [se] pw linear`` starting at ``i``, or None."""

    def at(j):
        return pieces[j] if j < len(pieces) else {"kind": None}

    j, expand, shuffle = i, None, None
    if _is_pw(at(j), act=True):
        expand, j = at(j), j + 1
        if at(j)["kind"] == "shuffle":
            shuffle, j = at(j), j + 1
    dw = at(j)
    if not _is_dw(dw) or (expand is not None and expand["act"] != dw["act"]):
        return None
    j += 1
    se = at(j) if at(j)["kind"] == "se" else None
    j += se is not None
    project, hidden = at(j), dw["cin"]
    if not _is_pw(project, act=False) or project["cin"] != dw["cin"]:
        return None
    if expand is not None and (expand["cout"], expand["groups"]) != (hidden, project["groups"]):
        return None
    cin = expand["cin"] if expand else dw["cin"]
    layer = {
        "type": "ibconv",
        "cin": cin,
        "cout": project["cout"],
        "kernel": dw["kernel"],
        "stride": dw["stride"],
        "expansion": _ratio(hidden, cin),
        "expand_conv": expand is not None,
        "hidden": hidden,
        "groups": project["groups"],
        "channel_shuffle": shuffle is not None,
        "act": dw["act"],
        "residual": False,
    }
    if se is not None:
        layer.update(se=True, se_hidden=se["se_hidden"], se_act=se["se_act"], se_gate=se["se_gate"])
    return j + 1 - i, layer


def _ratio(hidden: int, cin: int) -> int | float:
    r = hidden / cin
    return int(r) if r.is_integer() else r

"""An ONNX graph read as a layer-list network, so a user's model file is priced like a NET.json.

Reading goes in two passes. The first walks the graph from its input to its output, one tensor at
a time, and turns each node group into a *piece*: a conv (Conv, with a BatchNormalization if the
exporter did not fold it, and its activation), a channel shuffle (Reshape -> Transpose ->
Reshape), a squeeze-excite branch (pool -> 1x1 conv -> act -> 1x1 conv -> gate -> Mul), a global
pool, a fully connected layer (Gemm, or MatMul + Add) and the start and end of a residual add.
The second groups pieces into the layers of :mod:`latency.networks.description`: a depthwise conv
followed by an optional squeeze-excite and a *linear* 1x1 conv is an inverted bottleneck, which
takes the 1x1 conv before it as its expand conv when that conv has the same activation (and the
channel shuffle between them); a residual add must enclose exactly one inverted bottleneck.

The result goes through the same validation as a hand-written description. A node that fits no
pattern is refused with its name and op type, never skipped: a graph is priced whole or not at all.
Two graphs that compute the same thing read the same: a 1x1 conv followed by an expansion-1 block
with the same activation is read as one expanding block, and a conv's bias is not recorded
(exporters fold BatchNorm into it, so it cannot be told from a BatchNorm).
"""

from __future__ import annotations

import math
from pathlib import Path

from latency.networks.checks import network_from_dict
from latency.networks.description import Network
from latency.networks.onnx_graph import Node, OnnxGraph, UnsupportedGraph

_POOLS = ("ReduceMean", "GlobalAveragePool")
_FLATTENS = ("Flatten", "Reshape", "Squeeze")


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
    pieces = _Walker(graph).walk()
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
    """Follows the one data path of a MobileNet-style graph, branching only where a residual
    add or a squeeze-excite rejoins it."""

    def __init__(self, graph: OnnxGraph) -> None:
        self.g = graph
        self.pieces: list[dict] = []
        self.open_add: Node | None = None

    def walk(self) -> list[dict]:
        g, cur = self.g, self.g.input
        while cur != g.output:
            users = g.users(cur)
            if not users:
                raise UnsupportedGraph(f"{g.path.name}: tensor {cur!r} leads nowhere")
            if len(users) == 2:
                cur = self._branch(cur, users)
                continue
            if len(users) > 1:
                names = ", ".join(n.where() for n in users)
                raise UnsupportedGraph(
                    f"tensor {cur!r} feeds {len(users)} nodes ({names}); only residual adds and "
                    "squeeze-excite branches may fork the graph"
                )
            cur = self._step(cur, users[0])
        if self.open_add is not None:
            raise UnsupportedGraph(f"{self.open_add.where()}: the residual add is never reached")
        return self.pieces

    def _branch(self, cur: str, users: list[Node]) -> str:
        ops = sorted(n.op for n in users)
        if ops == ["Add", "Conv"] and self.open_add is None:
            add = next(n for n in users if n.op == "Add")
            self.open_add = add
            self.pieces.append({"kind": "res_start", "node": add.name})
            return self._step(cur, next(n for n in users if n.op == "Conv"))
        if "Mul" in ops and ({*ops} - {"Mul"}) <= set(_POOLS) and len(set(ops)) == 2:
            return self._squeeze_excite(cur, users)
        names = ", ".join(n.where() for n in users)
        raise UnsupportedGraph(f"tensor {cur!r} forks into {names}: not a pattern this reader maps")

    def _step(self, cur: str, node: Node) -> str:
        if node.op == "Conv":
            return self._conv(cur, node)
        if node.op in _POOLS:
            return self._pool(cur, node)
        if node.op in ("Gemm", "MatMul"):
            return self._fc(cur, node)
        if node.op == "Reshape":
            return self._shuffle(cur, node)
        if node.op == "Add" and node is self.open_add:
            self.open_add = None
            self.pieces.append({"kind": "res_end", "node": node.name})
            return node.out
        raise UnsupportedGraph(
            f"{node.where()} cannot be mapped to a layer (supported: Conv, BatchNormalization, "
            "Relu, Clip(0,6), HardSwish, HardSigmoid, Sigmoid/Mul (swish), residual Add, "
            "channel shuffle, squeeze-excite, global pooling, Gemm/MatMul)"
        )

    def _conv_core(self, cur: str, node: Node) -> tuple[dict, str]:
        """A Conv (+ BatchNormalization) as a piece without activation; returns it and its
        output tensor."""
        g = self.g
        if node.inputs[0] != cur:
            raise UnsupportedGraph(f"{node.where()}: the data path must be its first input")
        weight = g.const(node.inputs[1], node, "weight")
        cout, _, kh, kw = weight.shape
        strides = tuple(node.attrs.get("strides", (1, 1)))
        if kh != kw or kh % 2 == 0 or len(set(strides)) != 1:
            raise UnsupportedGraph(
                f"{node.where()}: only square odd kernels with equal strides are supported "
                f"(kernel {kh}x{kw}, strides {list(strides)})"
            )
        if any(d != 1 for d in node.attrs.get("dilations", (1, 1))):
            raise UnsupportedGraph(f"{node.where()}: dilated convolutions are not supported")
        (_, cin, h, w), out_shape = g.shape(cur, node, 4), g.shape(node.out, node, 4)
        s = strides[0]
        if tuple(out_shape[2:]) != (math.ceil(h / s), math.ceil(w / s)):
            raise UnsupportedGraph(
                f"{node.where()}: output {list(out_shape[2:])} from input {[h, w]} at stride {s} "
                "is not 'SAME' padding (pad kernel//2 on each side)"
            )
        out = node.out
        bn = g.only_user(out)
        if bn is not None and bn.op == "BatchNormalization":
            out = bn.out
        piece = {
            "kind": "conv",
            "node": node.name,
            "cin": cin,
            "cout": cout,
            "kernel": kh,
            "stride": s,
            "groups": int(node.attrs.get("group", 1)),
        }
        return piece, out

    def _conv(self, cur: str, node: Node) -> str:
        piece, out = self._conv_core(cur, node)
        piece["act"], out, _ = self.g.activation(out)
        self.pieces.append(piece)
        return out

    def _squeeze_excite(self, cur: str, users: list[Node]) -> str:
        g = self.g
        pool = next(n for n in users if n.op in _POOLS)
        mul = next(n for n in users if n.op == "Mul")
        self._check_pool(cur, pool, keepdims=True)
        chain, t = [], pool.out
        for role in ("reduce", "expand"):
            conv = g.only_user(t)
            if conv is None or conv.op != "Conv":
                raise UnsupportedGraph(
                    f"{pool.where()}: a squeeze-excite needs a 1x1 Conv after the pooling ({role})"
                )
            piece, t = self._conv_core(t, conv)
            act, t, _ = g.activation(t)
            if piece["kernel"] != 1 or act is None:
                raise UnsupportedGraph(
                    f"{conv.where()}: the squeeze-excite {role} conv must be 1x1 with an activation"
                )
            chain.append((piece, act))
        if set(mul.inputs) != {cur, t}:
            raise UnsupportedGraph(f"{mul.where()}: does not gate the squeeze-excite's input")
        (reduce, se_act), (_, se_gate) = chain
        self.pieces.append(
            {
                "kind": "se",
                "node": pool.name,
                "se_hidden": reduce["cout"],
                "se_act": se_act,
                "se_gate": se_gate,
            }
        )
        return mul.out

    def _check_pool(self, cur: str, node: Node, keepdims: bool) -> None:
        if node.op == "GlobalAveragePool":
            return
        axes = node.attrs.get("axes")
        if axes is None and len(node.inputs) > 1:  # opset 18: axes as an input
            axes = self.g.const(node.inputs[1], node, "axes").tolist()
        rank = len(self.g.shape(cur, node))
        if rank != 4 or sorted(a % 4 for a in axes or ()) != [2, 3]:
            raise UnsupportedGraph(f"{node.where()}: only a mean over height and width is a pool")
        if keepdims and node.attrs.get("keepdims", 1) != 1:
            raise UnsupportedGraph(f"{node.where()}: a squeeze-excite pool must keep its dims")

    def _pool(self, cur: str, node: Node) -> str:
        self._check_pool(cur, node, keepdims=False)
        out = node.out
        flat = self.g.only_user(out)
        if len(self.g.shape(out, node)) == 4:
            if flat is None or flat.op not in _FLATTENS:
                raise UnsupportedGraph(f"{node.where()}: the pooled features must be flattened")
            out = flat.out
        chs = self.g.shape(cur, node)[1]
        if self.g.shape(out, node) != (1, chs):
            raise UnsupportedGraph(f"{node.where()}: pooled features are not (batch, {chs})")
        self.pieces.append({"kind": "pool", "node": node.name, "cin": chs, "cout": chs})
        return out

    def _fc(self, cur: str, node: Node) -> str:
        g = self.g
        if node.inputs[0] != cur:
            raise UnsupportedGraph(f"{node.where()}: the features must be its first input")
        (_, cin), (_, cout) = g.shape(cur, node, 2), g.shape(node.out, node, 2)
        g.const(node.inputs[1], node, "weight")
        out, bias = node.out, node.op == "Gemm" and len(node.inputs) > 2 and bool(node.inputs[2])
        add = g.only_user(out)
        if node.op == "MatMul" and add is not None and add.op == "Add":
            other = next(t for t in add.inputs if t != out)
            g.const(other, add, "bias")
            out, bias = add.out, True
        act, out, _ = g.activation(out)
        self.pieces.append(
            {"kind": "fc", "node": node.name, "cin": cin, "cout": cout, "act": act, "bias": bias}
        )
        return out

    def _shuffle(self, cur: str, node: Node) -> str:
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
        self.pieces.append({"kind": "shuffle", "node": node.name, "groups": five[1]})
        return back.out


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
    """Pieces -> layer dicts; a residual span must hold exactly one inverted bottleneck."""
    layers: list[dict] = []
    i = 0
    while i < len(pieces):
        p = pieces[i]
        if p["kind"] != "res_start":
            n, layer = _layer_at(pieces, i)
            layers.append(layer)
            i += n
            continue
        end = next(j for j in range(i, len(pieces)) if pieces[j]["kind"] == "res_end")
        span = pieces[i + 1 : end]
        n, layer = _layer_at(span, 0) if span else (0, {})
        if n != len(span) or layer.get("type") != "ibconv":
            raise UnsupportedGraph(
                f"node {p['node']!r} (Add): a residual add must enclose exactly one inverted "
                "bottleneck (expand conv, depthwise conv, squeeze-excite, linear 1x1 conv)"
            )
        layer["residual"] = True
        layers.append(layer)
        i = end + 1
    return layers


def _layer_at(pieces: list[dict], i: int) -> tuple[int, dict]:
    """The layer starting at piece ``i`` and how many pieces it spans."""
    p = pieces[i]
    block = _ibconv_at(pieces, i)
    if block is not None:
        return block
    kind = p["kind"]
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
        f"node {p['node']!r}: a {what} is only mapped inside an inverted bottleneck"
    )


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

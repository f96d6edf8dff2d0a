"""An ONNX graph indexed for reading it as a network's pieces (behind ``onnx_import``).

:class:`OnnxGraph` loads a model, fixes a free batch dimension to 1, checks that the graph is
acyclic (a cycle is refused naming a node on it, before anything walks the graph), puts the nodes
in dependency order, runs ONNX shape inference (so every tensor has a size) and indexes who
produces and who consumes each tensor. Nodes that compute nothing at inference (``Identity``,
``Dropout``) are folded into aliases, and ``Constant`` nodes, ``Shape`` of a tensor of known size
and any node computed from constants alone (the size arithmetic an exporter writes for
``x.chunk(2, 1)`` or ``x.view(n, -1)``) into constants, so the patterns of
:mod:`latency.networks.onnx_import` see the same graph whichever exporter wrote the file. The
activation reader lives here too, because conv, fc and squeeze-excite all end in one.

Anything that does not fit is refused with :class:`UnsupportedGraph`, whose message names the node
and its op type: a graph is priced whole or not at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latency.export.onnx_file import load_onnx_model
from latency.networks.description import NetDescError


class UnsupportedGraph(NetDescError):
    """An ONNX graph (or one node of it) that the layer-list format cannot describe."""


@dataclass(frozen=True)
class Node:
    """One ONNX node with its inputs resolved through aliases and its attributes decoded."""

    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict = field(default_factory=dict, compare=False)

    @property
    def out(self) -> str:
        return self.outputs[0]

    def where(self) -> str:
        return f"node {self.name!r} ({self.op})"


#: the most values a node computed ahead of time may hold (sizes and shapes are a few; a
#: ``ConstantOfShape`` of ``[1e5, 1e5]`` in a hostile file is never allocated)
_FOLD_MAX = 2**20
#: ops whose output may hold far more values than their inputs (a size given as data, or
#: broadcasting)
_EXPANDING = {
    "Add",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "Div",
    "Expand",
    "EyeLike",
    "Gemm",
    "MatMul",
    "Mul",
    "OneHot",
    "Pad",
    "Range",
    "Resize",
    "Sub",
    "Tile",
    "Upsample",
    "Where",
}
#: ops that compute nothing at inference: their output is their first input
_PASS_THROUGH = {"Identity", "Dropout"}
#: ops whose output is not a function of their inputs: never computed ahead of time
_RANDOM = {
    "Bernoulli",
    "Multinomial",
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
}


def _node_name(raw, i: int) -> str:
    return raw.name or f"{raw.op_type}_{i}"


def _replace_nodes(graph, nodes: list) -> None:
    """Make ``nodes`` (copied: they may be the graph's own) the graph's node list."""
    copies = [type(raw)() for raw in nodes]
    for new, raw in zip(copies, nodes, strict=True):
        new.CopyFrom(raw)
    del graph.node[:]
    graph.node.extend(copies)


def _static_shapes(graph) -> dict[str, tuple[int, ...]]:
    """``{tensor: shape}`` of every tensor whose every dimension shape inference fixed."""
    shapes = {}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(d.dim_value for d in dims)
    return shapes


def dependency_order(nodes: list, names: list[str]) -> list[int]:
    """Indices of ``nodes`` (ONNX NodeProtos) so that every node comes after the producers of
    its inputs, ties kept in file order. Raises :class:`UnsupportedGraph` naming a node on a
    cycle, or a tensor written by two nodes."""
    import heapq

    producer: dict[str, int] = {}
    for i, raw in enumerate(nodes):
        for t in raw.output:
            if t and t in producer:
                raise UnsupportedGraph(
                    f"node {names[i]!r} ({raw.op_type}): writes tensor {t!r}, which node "
                    f"{names[producer[t]]!r} also writes; an ONNX tensor has one producer"
                )
            if t:
                producer[t] = i
    deps = [{producer[t] for t in raw.input if t in producer} for raw in nodes]
    users: list[list[int]] = [[] for _ in nodes]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    waiting = [len(d) for d in deps]
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for k in users[i]:
            waiting[k] -= 1
            if waiting[k] == 0:
                heapq.heappush(ready, k)
    if len(order) == len(nodes):
        return order
    # every node left waits on another node left: walking back through them must repeat a node,
    # and that node lies on a cycle
    left = set(range(len(nodes))) - set(order)
    i, seen = min(left), set()
    while i not in seen:
        seen.add(i)
        i = min(j for j in deps[i] if j in left)
    raise UnsupportedGraph(
        f"node {names[i]!r} ({nodes[i].op_type}): the graph has a cycle through this node; a "
        "network is an acyclic graph (re-export the model)"
    )


def check_node_form(raw, name: str, opset: int) -> None:
    """A node of the ONNX standard as its schema (at ``opset``) declares it: the number of
    inputs and outputs, every required input and attribute present, and every attribute of the
    declared type. Raises :class:`UnsupportedGraph` naming the node; a node of another domain or
    of an op ONNX does not know is left to the walker, which refuses what it cannot map."""
    import onnx
    from onnx import defs

    if raw.domain not in ("", "ai.onnx"):
        return
    try:
        schema = defs.get_schema(raw.op_type, max(opset, 1), "")
    except defs.SchemaError:
        return
    where = f"node {name!r} ({raw.op_type})"
    ins, outs = list(raw.input), list(raw.output)
    if not schema.min_input <= len(ins) <= schema.max_input or not all(ins[: schema.min_input]):
        want = _arity(schema.min_input, schema.max_input)
        raise UnsupportedGraph(f"{where}: has {len(ins)} inputs; {raw.op_type} takes {want}")
    if not schema.min_output <= len(outs) <= schema.max_output or not outs or not outs[0]:
        want = _arity(schema.min_output, schema.max_output)
        raise UnsupportedGraph(f"{where}: has {len(outs)} outputs; {raw.op_type} gives {want}")
    given = {a.name: a for a in raw.attribute}
    for attr, spec in schema.attributes.items():
        a = given.get(attr)
        if a is None:
            if spec.required:
                raise UnsupportedGraph(f"{where}: misses its required attribute {attr!r}")
            continue
        if a.type != int(spec.type):
            kinds = onnx.AttributeProto.AttributeType
            got = kinds.Name(a.type) if a.type in kinds.values() else str(a.type)
            raise UnsupportedGraph(
                f"{where}: attribute {attr!r} is {got}; {raw.op_type} takes "
                f"{kinds.Name(int(spec.type))}"
            )


def _arity(lo: int, hi: int) -> str:
    if lo == hi:
        return str(lo)
    return f"{lo} or more" if hi >= 2**31 - 1 else f"{lo} to {hi}"


class OnnxGraph:
    """Producers, consumers, constants and static shapes of one ONNX model's main graph."""

    def __init__(self, path: str | Path) -> None:
        import onnx

        # the same reader as `measure MODEL.onnx`: one input, free batch fixed to 1, sizes fixed
        model, input_name, _ = load_onnx_model(path)
        self.path = path = Path(path)
        graph = model.graph
        if len(graph.output) != 1:
            raise UnsupportedGraph(
                f"{path.name}: the graph has {len(graph.output)} outputs; a network description "
                "needs exactly one"
            )
        names = [_node_name(raw, i) for i, raw in enumerate(graph.node)]
        order = dependency_order(list(graph.node), names)
        self.opset = next(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17
        )
        for raw, name in zip(graph.node, names, strict=True):
            check_node_form(raw, name, self.opset)
        if order != sorted(order):  # valid ONNX is sorted; shape inference needs it sorted
            _replace_nodes(graph, [graph.node[i] for i in order])
            names = [names[i] for i in order]
        model, names = self._fold_constants(model, names)
        graph = model.graph
        self.input, self.output = input_name, graph.output[0].name
        self.alias: dict[str, str] = {}
        self.nodes: list[Node] = []
        self.consumers: dict[str, list[Node]] = {}
        for raw, name in zip(graph.node, names, strict=True):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in raw.attribute}
            ins = tuple(self.resolve(t) for t in raw.input)
            if raw.op_type in _PASS_THROUGH:
                self.alias[raw.output[0]] = ins[0]
                continue
            node = Node(name, raw.op_type, ins, tuple(raw.output), attrs)
            self.nodes.append(node)
            for t in ins:
                self.consumers.setdefault(t, []).append(node)
        self.output = self.resolve(self.output)

    def _fold_constants(self, model, names: list[str]) -> tuple:
        """Infer shapes, then fold every node whose outputs are constants into initializers, and
        again until nothing more folds (a folded size gives a later tensor its size). Sets
        :attr:`consts` and :attr:`shapes`; returns the model and its remaining nodes' names."""
        import onnx
        from onnx import numpy_helper

        while True:
            try:
                model = onnx.shape_inference.infer_shapes(model, data_prop=True)
            except Exception as exc:  # onnx raises InferenceError or a generic RuntimeError
                raise UnsupportedGraph(
                    f"{self.path.name}: ONNX shape inference failed: {exc}"
                ) from None
            graph = model.graph
            self.shapes = _static_shapes(graph)
            self.consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
            kept = [(raw, name) for raw, name in zip(graph.node, names, strict=True)]
            kept = [(raw, name) for raw, name in kept if not self._fold(raw)]
            if len(kept) == len(graph.node):
                return model, names
            used = {t for raw, _ in kept for t in raw.input} | {graph.output[0].name}
            present = {t.name for t in graph.initializer}
            for t, value in self.consts.items():
                if t in used and t not in present:
                    graph.initializer.append(numpy_helper.from_array(np.asarray(value), t))
            _replace_nodes(graph, [raw for raw, _ in kept])
            names = [name for _, name in kept]

    def _fold(self, raw) -> bool:
        """Compute a node ahead of time when its outputs are constants: a ``Constant``, ``Shape``
        of a tensor of known size, or a deterministic node whose inputs are all constants. True
        (and its outputs in :attr:`consts`) when folded."""
        import onnx

        if raw.domain not in ("", "ai.onnx") or raw.op_type in _RANDOM:
            return False
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in raw.attribute}
        if raw.op_type == "Shape":
            if raw.input[0] not in self.shapes:
                return False
            shape = self.shapes[raw.input[0]][attrs.get("start", 0) : attrs.get("end")]
            self.consts[raw.output[0]] = np.array(shape, dtype=np.int64)
            return True
        feeds = [t for t in raw.input if t]
        if not feeds and raw.op_type != "Constant":
            return False
        if any(t not in self.consts for t in feeds):
            return False
        if not self._small(raw):
            return False
        graph_attrs = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
        if any(a.type in graph_attrs for a in raw.attribute):  # If, Loop, Scan: not folded
            return False
        from onnx.reference import ReferenceEvaluator

        try:
            evaluator = ReferenceEvaluator(raw, opsets={"": self.opset})
            values = evaluator.run(None, {t: self.consts[t] for t in feeds})
        except Exception:  # not computable here: the node stays, and is mapped or refused
            return False
        for t, value in zip(raw.output, values, strict=False):
            if t:
                self.consts[t] = np.asarray(value)
        return True

    def _small(self, raw) -> bool:
        """True when computing ``raw`` ahead of time cannot allocate much: every output's size
        is known and at most :data:`_FOLD_MAX` values, or unknown for an op that never makes
        more values than its inputs hold."""
        for t in raw.output:
            if t in self.shapes:
                if math.prod(self.shapes[t]) > _FOLD_MAX:
                    return False
            elif raw.op_type in _EXPANDING:
                return False
        return True

    def resolve(self, tensor: str) -> str:
        while tensor in self.alias:
            tensor = self.alias[tensor]
        return tensor

    def users(self, tensor: str) -> list[Node]:
        return self.consumers.get(tensor, [])

    def only_user(self, tensor: str) -> Node | None:
        users = self.users(tensor)
        return users[0] if len(users) == 1 and tensor != self.output else None

    def shape(self, tensor: str, node: Node, rank: int | None = None) -> tuple[int, ...]:
        """The static shape of ``tensor`` (read at ``node``); with ``rank``, it must have as
        many dimensions."""
        if tensor in self.shapes and rank is not None and len(self.shapes[tensor]) != rank:
            raise UnsupportedGraph(
                f"{node.where()}: tensor {tensor!r} has shape {list(self.shapes[tensor])}; "
                f"a {rank}-D tensor is expected here"
            )
        if tensor not in self.shapes:
            raise UnsupportedGraph(
                f"{node.where()}: the size of tensor {tensor!r} is unknown after shape inference "
                "(export the model with a fixed input size)"
            )
        return self.shapes[tensor]

    def const(self, tensor: str, node: Node, what: str) -> np.ndarray:
        if tensor not in self.consts:
            raise UnsupportedGraph(f"{node.where()}: its {what} is not a constant")
        return self.consts[tensor]

    def activation(self, tensor: str) -> tuple[str | None, str, list[Node]]:
        """The activation applied to ``tensor``, if any: ``(name, output tensor, its nodes)``.

        Recognised: Relu, Clip(0, 6) = relu6, HardSwish, HardSigmoid(1/6, 1/2) (PyTorch's),
        Sigmoid, and the two gated forms ``x * Sigmoid(x)`` (swish) and ``x * HardSigmoid(x)``
        (h-swish) as exporters write them.
        """
        users = self.users(tensor)
        if tensor == self.output or not users:
            return None, tensor, []
        if len(users) == 2:
            gate = next((n for n in users if n.op in ("Sigmoid", "HardSigmoid")), None)
            mul = next((n for n in users if n.op == "Mul"), None)
            if gate and mul and set(mul.inputs) == {tensor, gate.out}:
                if gate.op == "Sigmoid":
                    return "swish", mul.out, [gate, mul]
                if self._torch_hsigmoid(gate):
                    return "hswish", mul.out, [gate, mul]
            return None, tensor, []
        node = users[0]
        name = {"Relu": "relu", "HardSwish": "hswish", "Sigmoid": "sigmoid"}.get(node.op)
        if node.op == "Clip" and self._clip_bounds(node) == (0.0, 6.0):
            name = "relu6"
        if node.op == "HardSigmoid" and self._torch_hsigmoid(node):
            name = "hsigmoid"
        if node.op in ("Clip", "HardSigmoid") and name is None:
            raise UnsupportedGraph(
                f"{node.where()}: only Clip(0, 6) (ReLU6) and HardSigmoid(alpha=1/6, beta=1/2) "
                "are supported activations of this kind"
            )
        if name is None:
            return None, tensor, []
        return name, node.out, [node]

    def _clip_bounds(self, node: Node) -> tuple[float, float]:
        if "min" in node.attrs or "max" in node.attrs:  # opset < 11
            return float(node.attrs.get("min", -np.inf)), float(node.attrs.get("max", np.inf))
        bounds = []
        for i, default in ((1, -np.inf), (2, np.inf)):
            name = node.inputs[i] if len(node.inputs) > i else ""
            bounds.append(float(self.const(name, node, "bound")) if name else default)
        return bounds[0], bounds[1]

    @staticmethod
    def _torch_hsigmoid(node: Node) -> bool:
        alpha, beta = node.attrs.get("alpha", 0.2), node.attrs.get("beta", 0.5)
        return abs(alpha - 1 / 6) < 1e-6 and abs(beta - 0.5) < 1e-6

"""An ONNX graph indexed for reading it as a chain of MobileNet pieces (behind ``onnx_import``).

:class:`OnnxGraph` loads a model, fixes a free batch dimension to 1, runs ONNX shape inference (so
every tensor has a size) and indexes who produces and who consumes each tensor. Nodes that compute
nothing at inference (``Identity``, ``Dropout``) are folded into aliases and ``Constant`` nodes
into constants, so the patterns of :mod:`latency.networks.onnx_import` see the same graph
whichever exporter wrote the file. The activation reader lives here too, because conv, fc and
squeeze-excite all end in one.

Anything that does not fit is refused with :class:`UnsupportedGraph`, whose message names the node
and its op type: a graph is priced whole or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latency.export.model_file import load_onnx_model
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


#: ops that compute nothing at inference: their output is their first input
_PASS_THROUGH = {"Identity", "Dropout"}


class OnnxGraph:
    """Producers, consumers, constants and static shapes of one ONNX model's main graph."""

    def __init__(self, path: str | Path) -> None:
        import onnx
        from onnx import numpy_helper

        # the same reader as `measure MODEL.onnx`: one input, free batch fixed to 1, sizes fixed
        model, input_name, _ = load_onnx_model(path)
        self.path = path = Path(path)
        graph = model.graph
        self.consts: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in graph.initializer
        }
        if len(graph.output) != 1:
            raise UnsupportedGraph(
                f"{path.name}: the graph has {len(graph.output)} outputs; a network description "
                "needs exactly one"
            )
        try:
            model = onnx.shape_inference.infer_shapes(model, data_prop=True)
        except Exception as exc:  # onnx raises InferenceError or a generic RuntimeError
            raise UnsupportedGraph(f"{path.name}: ONNX shape inference failed: {exc}") from None
        graph = model.graph
        self.input, self.output = input_name, graph.output[0].name
        self.shapes: dict[str, tuple[int, ...]] = {}
        for vi in [*graph.input, *graph.value_info, *graph.output]:
            dims = vi.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                self.shapes[vi.name] = tuple(d.dim_value for d in dims)
        self.alias: dict[str, str] = {}
        self.nodes: list[Node] = []
        self.consumers: dict[str, list[Node]] = {}
        for i, raw in enumerate(graph.node):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in raw.attribute}
            name = raw.name or f"{raw.op_type}_{i}"
            ins = tuple(self.resolve(t) for t in raw.input)
            if raw.op_type == "Constant":
                if "value" not in attrs:
                    raise UnsupportedGraph(f"node {name!r} (Constant): only tensor constants")
                self.consts[raw.output[0]] = numpy_helper.to_array(attrs["value"])
                continue
            if raw.op_type in _PASS_THROUGH:
                self.alias[raw.output[0]] = ins[0]
                if ins[0] in self.consts:
                    self.consts[raw.output[0]] = self.consts[ins[0]]
                continue
            node = Node(name, raw.op_type, ins, tuple(raw.output), attrs)
            self.nodes.append(node)
            for t in ins:
                self.consumers.setdefault(t, []).append(node)
        self.output = self.resolve(self.output)

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

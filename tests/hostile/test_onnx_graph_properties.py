"""Property-based hostile ONNX graphs: random small graphs drawn from a vocabulary of nodes (Conv,
Relu, Add, MaxPool, GlobalAveragePool, Flatten, Gemm, Concat, Identity) and of junk (unknown ops,
wrong arities, dangling inputs, cycles, attributes of the wrong type or size, initialisers whose
dims disagree with their data) make ``describe``, ``predict`` and ``measure`` on the mock either
succeed or refuse in one line with exit 2 -- never exit 1, never an uncaught exception, never a
hang (each command runs under an alarm; a few run in a child process with a timeout, which also
catches a hang inside C++ code). The default run is a few dozen derandomized examples; the
``slow`` run draws many more."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from hostile_support import PIXEL3, REPO
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from latency.cli.app import main

#: the longest one command may take on one graph before it counts as a hang
HANG_S = 60

# ---- drawing graphs -----------------------------------------------------------------------------
GOOD = ["Conv", "Relu", "Add", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm", "Concat"]
#: ops drawn more often, so that many graphs are networks: conv stacks, a basic block, a head
CHAIN = ["Conv", "Conv", "Relu", "MaxPool", "Block", "Head"]
JUNK = ["unknown", "arity", "dangling", "cycle", "attribute", "initialiser", "odd"]
#: ops the reader maps only in some forms (shuffles, splits, squeeze-excite, clipped activations),
#: drawn with constant inputs of drawn values, so that those forms' checks see nonsense too
ODD = ["Clip", "HardSigmoid", "ReduceMean", "Split", "Slice", "Gather", "Reshape", "Transpose"]
#: constants those ops are handed: indices, axes, bounds, shapes -- sensible and not
SMALL = st.lists(st.integers(-9, 9), min_size=0, max_size=5)


class _Builder:
    """A graph drawn node by node; ``shapes`` tracks the size of each tensor that has one, so
    that most drawn nodes fit their inputs and many graphs are valid networks."""

    def __init__(self, draw, chs: int, size: int) -> None:
        self.draw = draw
        self.nodes: list = []
        self.inits: list = []
        self.shapes: dict[str, tuple[int, ...]] = {"x": (1, chs, size, size)}
        self.n = 0
        self.cur = "x"  # the last tensor made: most nodes continue from it

    def name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def tensor(self, rank: int | None = None) -> str:
        """Mostly the last tensor made (a chain), sometimes any tensor (a fork)."""
        ok = self.cur in self.shapes and (rank is None or len(self.shapes[self.cur]) == rank)
        if ok and self.draw(st.integers(0, 4), label="fork?"):
            return self.cur
        names = [t for t, s in self.shapes.items() if rank is None or len(s) == rank]
        names = names or list(self.shapes)
        return self.draw(st.sampled_from(sorted(names)), label="input")

    def weight(self, shape: tuple[int, ...]) -> str:
        name = self.name("w")
        values = np.full(shape, 0.05, np.float32)
        self.inits.append(numpy_helper.from_array(values, name))
        return name

    def add(self, op: str, inputs: list[str], out_shape, **attrs) -> str:
        out = self.name("t")
        self.nodes.append(helper.make_node(op, inputs, [out], self.name(op.lower()), **attrs))
        if out_shape is not None:
            self.shapes[out] = out_shape
        self.cur = out
        return out

    # -- the vocabulary --------------------------------------------------------------------------
    def good(self, op: str) -> str:
        d = self.draw
        if op == "Conv":
            t = self.tensor(4)
            _, cin, h, w = self.shapes[t] if len(self.shapes[t]) == 4 else (1, 1, 1, 1)
            k = d(st.sampled_from([1, 3]), label="kernel")
            s = d(st.sampled_from([1, 2]), label="stride")
            depthwise = d(st.booleans(), label="depthwise") and cin > 1
            cout = cin if depthwise else d(st.sampled_from([4, 8]), label="cout")
            w_shape = (cout, 1 if depthwise else cin, k, k)
            attrs = {"pads": [k // 2] * 4, "strides": [s, s], "group": cin if depthwise else 1}
            shape = (1, cout, -(-h // s), -(-w // s))
            return self.add("Conv", [t, self.weight(w_shape)], shape, **attrs)
        if op == "Relu":
            t = self.tensor()
            return self.add("Relu", [t], self.shapes[t])
        if op == "Block":  # a ResNet basic block: conv + relu, conv, add the input, relu
            t = self.tensor(4)
            shape = self.shapes[t]
            if len(shape) != 4:
                return self.add("Relu", [t], shape)
            w = (shape[1], shape[1], 3, 3)
            a = self.add("Conv", [t, self.weight(w)], shape, pads=[1] * 4)
            a = self.add("Relu", [a], shape)
            b = self.add("Conv", [a, self.weight(w)], shape, pads=[1] * 4)
            return self.add("Relu", [self.add("Add", [t, b], shape)], shape)
        if op == "Head":  # global pool, flatten, classifier
            t = self.tensor(4)
            shape = self.shapes[t]
            if len(shape) != 4:
                return self.add("Relu", [t], shape)
            p = self.add("GlobalAveragePool", [t], (*shape[:2], 1, 1))
            f = self.add("Flatten", [p], shape[:2])
            classes = self.draw(st.sampled_from([4, 10]), label="classes")
            return self.add("Gemm", [f, self.weight((classes, shape[1]))], (1, classes), transB=1)
        if op == "Add":
            a = self.tensor()
            same = [t for t, s in self.shapes.items() if s == self.shapes[a]]
            b = d(st.sampled_from(sorted(same)), label="other")
            return self.add("Add", [a, b], self.shapes[a])
        if op == "MaxPool":
            t = self.tensor(4)
            s = d(st.sampled_from([1, 2]), label="stride")
            n, c, h, w = self.shapes[t] if len(self.shapes[t]) == 4 else (1, 1, 1, 1)
            attrs = {"kernel_shape": [3, 3], "pads": [1] * 4, "strides": [s, s]}
            return self.add("MaxPool", [t], (n, c, -(-h // s), -(-w // s)), **attrs)
        if op == "GlobalAveragePool":
            t = self.tensor(4)
            shape = (*self.shapes[t][:2], 1, 1) if len(self.shapes[t]) == 4 else None
            return self.add("GlobalAveragePool", [t], shape)
        if op == "Flatten":
            t = self.tensor(4)
            return self.add("Flatten", [t], (1, int(np.prod(self.shapes[t][1:]))))
        if op == "Gemm":
            t = self.tensor(2)
            cin = self.shapes[t][-1] if self.shapes[t] else 1
            cout = d(st.sampled_from([4, 10]), label="classes")
            return self.add("Gemm", [t, self.weight((cout, cin))], (1, cout), transB=1)
        if op == "Concat":
            a, b = self.tensor(4), self.tensor(4)
            sa, sb = self.shapes[a], self.shapes[b]
            fits = len(sa) == len(sb) == 4 and sa[2:] == sb[2:]
            shape = (1, sa[1] + sb[1], *sa[2:]) if fits else None
            return self.add("Concat", [a, b], shape, axis=1)
        t = self.tensor()  # Identity
        return self.add("Identity", [t], self.shapes[t])

    def junk(self, kind: str) -> str:
        d = self.draw
        if kind == "unknown":
            return self.add("Frobnicate", [self.tensor()], None)
        if kind == "arity":
            n = d(st.sampled_from([0, 1, 3, 4]), label="inputs")
            op = d(st.sampled_from(["Conv", "Gemm", "Relu", "Add", "MaxPool"]), label="op")
            inputs = [self.tensor() for _ in range(n)]
            attrs = {"kernel_shape": [3, 3]} if op == "MaxPool" else {}
            return self.add(op, inputs, None, **attrs)
        if kind == "dangling":
            op = d(st.sampled_from(["Relu", "Add", "Concat"]), label="op")
            inputs = [self.tensor(), "nowhere"] if op != "Relu" else ["nowhere"]
            return self.add(op, inputs, None, **({"axis": 1} if op == "Concat" else {}))
        if kind == "cycle":
            # an input that a later node (or this one) writes: t{n+1} is this node's output
            ahead = d(st.integers(1, 3), label="ahead")
            op = d(st.sampled_from(["Identity", "Relu", "Add"]), label="op")
            later = f"t{self.n + ahead}"
            inputs = [later] if op != "Add" else [self.tensor(), later]
            return self.add(op, inputs, None)
        if kind == "attribute":
            op = d(st.sampled_from(["Conv", "MaxPool", "Concat", "Gemm"]), label="op")
            name = d(
                st.sampled_from(["strides", "kernel_shape", "pads", "group", "axis", "transB"]),
                label="attribute",
            )
            value = d(
                st.sampled_from([[0, 0], [3, 3, 3], [-1, 2], 0, -5, 99, 1.5, [1.0, 1.0], "same"]),
                label="value",
            )
            t = self.tensor(4 if op != "Gemm" else 2)
            inputs = [t]
            if op == "Conv":
                inputs.append(self.weight((4, self.shapes[t][1] if self.shapes[t] else 1, 3, 3)))
            elif op == "Gemm":
                inputs.append(self.weight((4, self.shapes[t][-1] if self.shapes[t] else 1)))
            elif op == "Concat":
                inputs.append(t)
            attrs = {"kernel_shape": [3, 3]} if op == "MaxPool" else {}
            attrs[name] = value
            return self.add(op, inputs, None, **attrs)
        if kind == "odd":
            return self.odd(d(st.sampled_from(ODD), label="odd op"))
        # an initialiser whose dims disagree with its data, or of an unknown dtype
        t = self.tensor(4)
        w = onnx.TensorProto()
        w.name, w.data_type = self.name("w"), d(st.sampled_from([1, 1, 1, 99]), label="dtype")
        w.dims.extend(
            d(
                st.lists(st.sampled_from([-3, 0, 1, 3, 8, 10**9, 2**62]), min_size=1, max_size=4),
                label="dims",
            )
        )
        w.raw_data = bytes(4 * d(st.integers(0, 300), label="floats"))
        self.inits.append(w)
        return self.add("Conv", [t, w.name], None, pads=[1] * 4)

    def const(self, values: list[int], dtype=np.int64) -> str:
        name = self.name("k")
        self.inits.append(numpy_helper.from_array(np.array(values, dtype), name))
        return name

    def odd(self, op: str) -> str:
        d = self.draw
        t = self.tensor()
        if op == "Clip":
            bounds = d(st.lists(st.sampled_from([0.0, 6.0, -1.0, 1e9]), max_size=2), label="bounds")
            inputs = [t, *(self.const([b], np.float32) for b in bounds)]
            return self.add("Clip", inputs, self.shapes.get(t))
        if op == "HardSigmoid":
            alpha = d(st.sampled_from([1 / 6, 0.2, -3.0]), label="alpha")
            return self.add("HardSigmoid", [t], self.shapes.get(t), alpha=alpha, beta=0.5)
        if op == "ReduceMean":  # opset 17: axes an attribute
            axes = d(st.lists(st.integers(-9, 9), min_size=1, max_size=4), label="axes")
            return self.add("ReduceMean", [t], None, axes=axes)
        if op == "Split":
            axis = d(st.integers(-5, 5), label="axis")
            outs = [self.name("t"), self.name("t")]
            self.nodes.append(helper.make_node("Split", [t], outs, self.name("split"), axis=axis))
            self.cur = outs[0]
            return outs[0]
        if op == "Slice":
            parts = [self.const(d(SMALL, label=k)) for k in ("starts", "ends", "axes", "steps")]
            return self.add("Slice", [t, *parts[: d(st.integers(2, 4), label="n")]], None)
        if op == "Gather":
            axis = d(st.integers(-4, 4), label="axis")
            return self.add("Gather", [t, self.const(d(SMALL, label="indices"))], None, axis=axis)
        if op == "Reshape":
            return self.add("Reshape", [t, self.const(d(SMALL, label="shape"))], None)
        perm = d(st.permutations(range(d(st.integers(1, 5), label="rank"))), label="perm")
        return self.add("Transpose", [t], None, perm=list(perm))


@st.composite
def onnx_graphs(draw) -> bytes:
    """A serialized ONNX model: one float image input, 1 to 8 drawn nodes, one output."""
    chs = draw(st.sampled_from([1, 3, 4, 8]), label="channels")
    size = draw(st.sampled_from([4, 8]), label="size")
    b = _Builder(draw, chs, size)
    last = "x"
    for _ in range(draw(st.integers(1, 8), label="nodes")):
        if draw(st.integers(0, 4), label="junk?") == 0:
            last = b.junk(draw(st.sampled_from(JUNK), label="junk"))
        else:
            last = b.good(draw(st.sampled_from([*GOOD, *CHAIN, "Identity"]), label="op"))
    out = last if draw(st.integers(0, 3), label="output") else b.tensor()
    shape = list(b.shapes[out]) if out in b.shapes else None
    graph = helper.make_graph(
        b.nodes,
        "drawn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, chs, size, size])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, shape)],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


# ---- the property -------------------------------------------------------------------------------
def _commands(path: Path) -> dict[str, list[str]]:
    return {
        "describe": ["describe", str(path)],
        "measure": ["measure", str(path), "--device", "mock"],
        "predict": ["predict", str(path), "--lut", str(PIXEL3)],
    }


def _invoke(args: list[str], cache: Path):
    """In-process, under an alarm: a command still running after HANG_S seconds fails."""

    def hang(signum, frame):
        raise TimeoutError(f"{args[0]} hung for {HANG_S} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(HANG_S)
    try:
        return CliRunner().invoke(main, args, env={"PADNAS_CACHE": str(cache)})
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check(name: str, r, expect_error, before) -> None:
    """Exit 0 (a network read and priced) or the strict one-line refusal with exit 2; never
    exit 1, an exception other than the exit, a traceback or a changed file."""
    assert r.exception is None or isinstance(r.exception, SystemExit), (name, repr(r.exception))
    assert "Traceback" not in r.output, (name, r.output)
    if r.exit_code == 0:
        assert before.changed() == [], name
        return
    expect_error(r, 2, alone=name != "predict", unchanged=before)


def _check_all(blob: bytes, cache: Path, expect_error, frozen) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "drawn.onnx"
        path.write_bytes(blob)
        answers = {}
        for name, args in _commands(path).items():
            before = frozen(path)
            r = _invoke(args, cache)
            answers[name] = r.exit_code
            _check(name, r, expect_error, before)
        note(f"exit codes: {answers}")
        # the three commands read the file with one reader: they agree on whether it is a network
        assert answers["describe"] == answers["measure"], answers


SETTINGS = {
    "deadline": timedelta(seconds=HANG_S),
    "derandomize": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@settings(max_examples=50, **SETTINGS)
@given(blob=onnx_graphs())
def test_drawn_graphs_are_read_or_refused_in_one_line(blob, cache, expect_error, frozen):
    _check_all(blob, cache, expect_error, frozen)


@pytest.mark.slow
@settings(max_examples=400, **SETTINGS)
@given(blob=onnx_graphs())
def test_many_drawn_graphs_are_read_or_refused_in_one_line(blob, cache, expect_error, frozen):
    _check_all(blob, cache, expect_error, frozen)


def test_drawn_graphs_include_networks_that_are_read():
    """The generator is worth its examples: some of its graphs are networks ``describe`` reads
    (about one in ten), so the property sees the success path too, not only refusals."""
    from hypothesis import find

    def readable(blob: bytes) -> bool:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "g.onnx"
            path.write_bytes(blob)
            return CliRunner().invoke(main, ["describe", str(path)]).exit_code == 0

    settings_ = settings(max_examples=200, derandomize=True, database=None)
    found = find(onnx_graphs(), readable, settings=settings_)
    assert len(onnx.load_from_string(found).graph.node) >= 1


# ---- hangs a signal cannot catch: a child process with a timeout ------------------------------
def _cycle(kind: str) -> bytes:
    nodes = {
        "self": [helper.make_node("Identity", ["a"], ["a"], "selfie")],
        "pair": [
            helper.make_node("Relu", ["x", "b"], ["a"], "one"),
            helper.make_node("Identity", ["a"], ["b"], "two"),
        ],
        "output-back": [
            helper.make_node("Add", ["x", "y"], ["a"], "add"),
            helper.make_node("Relu", ["a"], ["y"], "relu"),
        ],
    }[kind]
    out = "y" if kind == "output-back" else "a"
    graph = helper.make_graph(
        nodes,
        "loop",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("kind", ["self", "pair", "output-back"])
def test_a_cycle_ends_in_a_child_process_within_the_time_bound(tmp_path, kind):
    path = tmp_path / f"{kind}.onnx"
    path.write_bytes(_cycle(kind))
    r = subprocess.run(
        [sys.executable, "-m", "latency.cli", "describe", str(path)],
        capture_output=True,
        text=True,
        timeout=HANG_S,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "PADNAS_CACHE": str(tmp_path)},
    )
    assert r.returncode == 2, r.stderr
    assert r.stdout == "" and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: node ") and "cycle" in r.stderr, r.stderr

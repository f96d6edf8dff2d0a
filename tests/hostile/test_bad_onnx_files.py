"""Hostile ONNX files: every size in an ONNX file is a claim, and each claim is checked before
it is used. Initialisers whose dims disagree with their data, unknown or non-numeric dtypes, data
kept in another file, convolutions and fully connected layers whose weights disagree with their
inputs, inputs that are not float images, nodes of the wrong form: each is one line naming the
tensor or node and what is wrong, exit 2, from ``describe``, ``predict`` and ``measure`` alike --
never a numpy or onnx traceback, never a price. The files are built here with ``onnx.helper``."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hostile_support import PIXEL3
from onnx import TensorProto, helper, numpy_helper

from latency.export.onnx_file import OnnxFileError


def _tensor(name, dims, data: bytes | None = None, dtype=TensorProto.FLOAT, **fields):
    """A TensorProto exactly as written: ``dims`` and ``data`` (raw bytes) need not agree."""
    t = TensorProto()
    t.name, t.data_type = name, dtype
    t.dims.extend(dims)
    if data is not None:
        t.raw_data = data
    for field, values in fields.items():
        getattr(t, field).extend(values)
    return t


def _array(name, shape):
    return numpy_helper.from_array(np.full(shape, 0.01, np.float32), name)


def _net(
    *,
    conv_w=None,
    fc_w=None,
    input_type=TensorProto.FLOAT,
    input_shape=(1, 3, 8, 8),
    conv_attrs=None,
    conv_inputs=("x", "W"),
    extra_nodes=(),
    extra_inits=(),
    value_info=(),
    fc="Gemm",
):
    """x (1, 3, 8, 8) -> Conv 3x3 to 8 channels -> Relu -> GlobalAveragePool -> Flatten ->
    Gemm to 10 classes: a network ``describe`` reads, with any part replaced by a bad one."""
    if conv_attrs is None:
        conv_attrs = {"pads": [1, 1, 1, 1], "kernel_shape": [3, 3]}
    fc_node = (
        helper.make_node("Gemm", ["f", "G"], ["y"], "fc", transB=1)
        if fc == "Gemm"
        else helper.make_node("MatMul", ["f", "G"], ["y"], "fc")
    )
    nodes = [
        helper.make_node("Conv", list(conv_inputs), ["c"], "conv", **conv_attrs),
        helper.make_node("Relu", ["c"], ["r"], "relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], "pool"),
        helper.make_node("Flatten", ["p"], ["f"], "flat"),
        fc_node,
        *extra_nodes,
    ]
    default_fc = (10, 8) if fc == "Gemm" else (8, 10)
    inits = [
        conv_w if conv_w is not None else _array("W", (8, 3, 3, 3)),
        fc_w if fc_w is not None else _array("G", default_fc),
        *extra_inits,
    ]
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("x", input_type, list(input_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        inits,
        value_info=list(value_info),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _refused_everywhere(tmp_path, latency_cli, expect_error, frozen, model, *fragments) -> None:
    """``describe``, ``predict`` (the Pixel 3 table) and ``measure`` on the mock each refuse
    the file in one line holding every fragment, exit 2, and leave it as it was."""
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    for args in (
        ["describe", path],
        ["predict", path, "--lut", PIXEL3],
        ["measure", path, "--device", "mock"],
    ):
        before = frozen(path)
        expect_error(latency_cli(*args), 2, *fragments, unchanged=before)


def test_the_unbroken_network_is_read(tmp_path, latency_cli):
    """The network every case below breaks one part of reads and prices as it should."""
    path = tmp_path / "good.onnx"
    onnx.save(_net(), str(path))
    r = latency_cli("measure", path, "--device", "mock")
    assert r.exit_code == 0, r.output
    r = latency_cli("describe", path)
    assert r.exit_code == 0 and '"cout": 8' in r.output, r.output


# ---- initialisers and tensors ---------------------------------------------------------------
FLOATS = bytes(4 * 216)  # the 216 floats of an (8, 3, 3, 3) weight


@pytest.mark.parametrize(
    "weight, expect",
    [
        (_tensor("W", [8, 3, 3, 10**9], FLOATS), "claims dims [8, 3, 3, 1000000000]"),
        (_tensor("W", [2**62, 3, 3, 3], FLOATS), "every dimension must be in 0..2147483647"),
        (_tensor("W", [-8, 3, 3, 3], FLOATS), "claims dims [-8, 3, 3, 3]"),
        (_tensor("W", [8, 3, 3, 3], FLOATS[:40]), "(864 bytes of FLOAT) but holds 40 bytes"),
        (_tensor("W", [8, 3, 3, 3], FLOATS + b"\0" * 4), "but holds 868 bytes"),
        (_tensor("W", [8, 3, 3, 3], float_data=[0.5] * 7), "(216 values of FLOAT) but holds 7"),
        (_tensor("W", [8, 3, 3, 3]), "(216 values of FLOAT) but holds 0 values"),
    ],
    ids=["1e9", "2^62", "negative", "short-raw", "long-raw", "few-floats", "no-data"],
)
def test_initialisers_whose_dims_disagree_with_their_data(
    tmp_path, latency_cli, expect_error, frozen, weight, expect
):
    model = _net(conv_w=weight)
    _refused_everywhere(
        tmp_path, latency_cli, expect_error, frozen, model, "bad.onnx: initialiser 'W'", expect
    )


@pytest.mark.parametrize(
    "dtype, expect",
    [
        (99, "element type number 99 (no ONNX type)"),
        (TensorProto.STRING, "element type STRING, which padnas does not read"),
        (TensorProto.COMPLEX64, "element type COMPLEX64, which padnas does not read"),
    ],
)
def test_initialisers_of_unknown_or_non_numeric_dtypes(
    tmp_path, latency_cli, expect_error, frozen, dtype, expect
):
    model = _net(conv_w=_tensor("W", [8, 3, 3, 3], FLOATS, dtype=dtype))
    _refused_everywhere(tmp_path, latency_cli, expect_error, frozen, model, "'W'", expect)


def test_data_kept_in_another_file_is_never_followed(tmp_path, latency_cli, expect_error, frozen):
    """A tensor whose data 'lie' in /etc/passwd or ../secret: the path is never opened."""
    weight = _tensor("W", [8, 3, 3, 3])
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"
    model = _net(conv_w=weight)
    _refused_everywhere(
        tmp_path, latency_cli, expect_error, frozen, model, "'W'", "keeps its data in another file"
    )


def test_a_constant_nodes_tensor_is_checked_like_an_initialiser(
    tmp_path, latency_cli, expect_error, frozen
):
    const = helper.make_node("Constant", [], ["k"], "konst", value=_tensor("v", [10**6], b"\0" * 8))
    model = _net(extra_nodes=[const])
    _refused_everywhere(
        tmp_path,
        latency_cli,
        expect_error,
        frozen,
        model,
        "node 'konst' (Constant), attribute 'value'",
        "claims dims [1000000]",
    )


def test_a_size_computed_ahead_of_time_is_never_allocated_whole(
    tmp_path, latency_cli, expect_error
):
    """A ConstantOfShape of [16384, 16384] floats (1 GiB) added to the network's output: its
    value is not computed to read the graph (numpy's allocations are traced: far below the
    claim), and the graph is refused."""
    import tracemalloc

    shape = numpy_helper.from_array(np.array([16384, 16384], np.int64), "big_shape")
    big = helper.make_node("ConstantOfShape", ["big_shape"], ["big"], "bomb")
    add = helper.make_node("Add", ["y", "big"], ["z"], "use_it")
    model = _net(extra_nodes=[big], extra_inits=[shape])
    model.graph.node.append(add)
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    path = tmp_path / "bomb.onnx"
    onnx.save(model, str(path))
    tracemalloc.start()
    try:
        r = latency_cli("describe", path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 2**20, f"reading the graph allocated {peak / 2**20:.0f} MiB"
    expect_error(r, 2)


# ---- weights that disagree with the layer they belong to --------------------------------------
@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        (
            {"conv_w": _array("W", (8, 5, 3, 3))},
            ["node 'conv' (Conv): weight 'W' of shape [8, 5, 3, 3]", "input 'x' of 3 channels"],
        ),
        (
            {"conv_w": _array("W", (8, 3, 9))},
            ["node 'conv' (Conv): weight 'W' has shape [8, 3, 9]"],
        ),
        (
            {"conv_attrs": {"pads": [1, 1, 1, 1], "kernel_shape": [5, 5]}},
            ["node 'conv' (Conv): kernel_shape [5, 5] disagrees with its weight 'W'"],
        ),
        (
            {"conv_w": _array("W", (8, 1, 3, 3)), "conv_attrs": {"pads": [1] * 4, "group": 3}},
            ["with group 3 does not take its input 'x' of 3 channels"],
        ),
        (
            {"value_info": [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 16, 8, 8])]},
            ["conv"],
        ),
        (
            {"conv_inputs": ("x", "W", "B"), "extra_inits": [_array("B", (5,))]},
            ["node 'conv' (Conv): its bias 'B' has shape [5]; 8 values"],
        ),
        (
            {"fc_w": _array("G", (10, 6))},
            ["node 'fc' (Gemm): weight 'G' has shape [10, 6]", "8 input features to 10 outputs"],
        ),
        (
            {"fc": "MatMul", "fc_w": _array("G", (6, 10))},
            ["node 'fc' (MatMul): weight 'G' has shape [6, 10]", "need [8, 10]"],
        ),
    ],
    ids=[
        "conv-in-channels",
        "conv-3d-weight",
        "conv-kernel-attr",
        "conv-group",
        "conv-declared-out",
        "conv-bias",
        "gemm-features",
        "matmul-features",
    ],
)
def test_weights_that_disagree_with_their_layer(
    tmp_path, latency_cli, expect_error, frozen, kwargs, fragments
):
    _refused_everywhere(tmp_path, latency_cli, expect_error, frozen, _net(**kwargs), *fragments)


# ---- inputs and node forms ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        ({"input_type": TensorProto.STRING}, ["input 'x' has element type STRING", "float32"]),
        ({"input_type": TensorProto.INT64}, ["input 'x' has element type INT64"]),
        ({"input_shape": (1, 3, 0, 8)}, ["input 'x' has shape [1, 3, 0, 8]"]),
        ({"input_shape": (1, 3, 10**6, 10**6)}, ["every size must be at least 1"]),
    ],
    ids=["string", "int64", "zero", "huge"],
)
def test_inputs_that_are_not_float_images(
    tmp_path, latency_cli, expect_error, frozen, kwargs, fragments
):
    _refused_everywhere(tmp_path, latency_cli, expect_error, frozen, _net(**kwargs), *fragments)


def test_an_input_that_is_not_a_tensor(tmp_path, latency_cli, expect_error, frozen):
    model = _net()
    seq = helper.make_tensor_sequence_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    model.graph.input[0].CopyFrom(seq)
    _refused_everywhere(
        tmp_path, latency_cli, expect_error, frozen, model, "input 'x' is a sequence"
    )


@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        ({"conv_inputs": ("x",)}, ["node 'conv' (Conv): has 1 inputs; Conv takes 2 to 3"]),
        (
            {"conv_attrs": {"pads": [1] * 4, "strides": [1.0, 1.0]}},
            ["node 'conv' (Conv): attribute 'strides' is FLOATS; Conv takes INTS"],
        ),
        (
            {"conv_attrs": {"pads": [1] * 4, "strides": [0, 0]}},
            ["node 'conv' (Conv): strides [0, 0] must be two sizes of at least 1"],
        ),
        (
            {"conv_attrs": {"pads": [1] * 4, "group": 0}},
            ["node 'conv' (Conv)"],
        ),
    ],
    ids=["arity", "attr-type", "zero-stride", "zero-group"],
)
def test_nodes_of_the_wrong_form(tmp_path, latency_cli, expect_error, frozen, kwargs, fragments):
    _refused_everywhere(tmp_path, latency_cli, expect_error, frozen, _net(**kwargs), *fragments)


def test_a_pool_window_of_three_sizes_is_refused(tmp_path, latency_cli, expect_error, frozen):
    pool = helper.make_node(
        "MaxPool", ["x"], ["m"], "window", kernel_shape=[3, 3, 3], pads=[1, 1, 1, 1]
    )
    model = _net(conv_inputs=("m", "W"), extra_nodes=[pool])
    _refused_everywhere(tmp_path, latency_cli, expect_error, frozen, model, "node 'window'")


# ---- the host path: a file ONNX Runtime cannot run is bad input, not a failed conversion ------
def test_onnx_runtime_refusing_the_file_is_a_usage_error(
    tmp_path, latency_cli, expect_error, frozen, monkeypatch
):
    """``measure FILE --device host`` converts in a worker: the worker's usage error comes back
    as one (exit 2), and the reference runs before onnx2tf starts (the export here runs in this
    process and never reaches the converter)."""
    from latency.export import model_file, pool
    from latency.networks import latency

    def no_converter(*args):
        raise AssertionError("onnx2tf started on a file ONNX Runtime cannot run")

    monkeypatch.setattr(model_file, "onnx_to_tflite", no_converter)
    monkeypatch.setattr(latency, "run_exports", lambda jobs, **kw: [pool._run_job(j) for j in jobs])
    path = tmp_path / "bad.onnx"
    onnx.save(_net(conv_w=_array("W", (8, 5, 3, 3))), str(path))
    with pytest.raises(OnnxFileError, match=r"ONNX Runtime cannot run bad\.onnx"):
        model_file.export_onnx_model(path, cache_dir=tmp_path / "cache")
    before = frozen(path)
    r = latency_cli("measure", path, "--device", "host")
    expect_error(r, 2, "ONNX Runtime cannot run bad.onnx", "Input channels", unchanged=before)

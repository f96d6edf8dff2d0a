"""A user's ONNX file, read once and checked before anything uses it.

An ONNX file is a protobuf: every size in it is a claim. A tensor says it has dims ``[1e9, 3, 3,
3]`` and holds 216 floats; a dtype number no ONNX version defines; an input of strings where a
network takes images. Decoding such a tensor (``numpy_helper.to_array``) raises whatever numpy
raises, or allocates what the claim asks for. :func:`load_onnx_model` is the one reader of a
user's ONNX file for ``describe``, ``predict`` and ``measure``: it refuses, naming the tensor and
what is wrong, before any tensor is decoded, shape inference runs or a converter starts —

- a file that is not a regular file, or larger than :data:`MAX_FILE_BYTES`;
- initialisers, ``Constant`` values and tensors inside subgraphs whose dims are negative or out
  of range, whose data disagree with their dims (short or long ``raw_data``, a wrong count of
  typed values), whose dtype is unknown or not a number, or whose data lie in another file
  (external data: a path inside a user's file is never followed);
- more than one graph input, a free size other than the batch, an input that is not a float32
  image tensor, or one whose size is out of range.

Every refusal is a :class:`~latency.errors.LatencyUsageError` (exit 2).
"""

from __future__ import annotations

import math
from pathlib import Path

from latency.errors import LatencyUsageError
from padnas.core.paths import check_input_file

#: the largest ONNX file read (a mobile network is tens of MB; a protobuf is parsed whole)
MAX_FILE_BYTES = 256 * 2**20
#: the largest dimension any tensor or input may claim
MAX_DIM = 2**31 - 1
#: the most elements a graph input may have (the converter feeds it a random float32 tensor)
MAX_INPUT_ELEMENTS = 2**26

_NUMERIC = (
    "FLOAT",
    "UINT8",
    "INT8",
    "UINT16",
    "INT16",
    "INT32",
    "INT64",
    "BOOL",
    "FLOAT16",
    "DOUBLE",
    "UINT32",
    "UINT64",
    "BFLOAT16",
)


class OnnxFileError(LatencyUsageError):
    """An ONNX file that cannot be read as a network (exit 2); the message names the file and
    the tensor, node or input at fault."""


def load_onnx_model(onnx_path: str | Path):
    """``(model, input name, input shape)`` of a user's ONNX file, checked (see the module
    docstring), a free batch size set to 1. Cheap: callers check a file with it before
    starting a converter."""
    import onnx

    src = check_input_file(onnx_path, "give a MODEL.onnx file", OnnxFileError)
    size = src.stat().st_size
    if size > MAX_FILE_BYTES:
        raise OnnxFileError(
            f"{src.name}: {size / 2**20:.0f} MiB is larger than the {MAX_FILE_BYTES // 2**20} MiB "
            "padnas reads as one ONNX model"
        )
    try:
        model = onnx.load(str(src), load_external_data=False)
    except Exception as exc:  # a protobuf decode error has no stable public type
        raise OnnxFileError(f"{src} is not a readable ONNX model ({_first_line(exc)})") from None
    check_tensors(model.graph, src.name)
    name, shape = _the_input(model.graph, src.name)
    return model, name, shape


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _the_input(graph, file: str) -> tuple[str, tuple[int, ...]]:
    """The one graph input that is not an initialiser: a float32 tensor of fixed size (a free
    first dimension is the batch, fixed to 1 in ``graph``)."""
    from onnx import TensorProto

    consts = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise OnnxFileError(
            f"{file}: the model has {len(inputs)} inputs; padnas reads single-input models only"
        )
    inp = inputs[0]
    where = f"{file}: input {inp.name!r}"
    if inp.type.WhichOneof("value") != "tensor_type":
        kind = inp.type.WhichOneof("value") or "no type"
        raise OnnxFileError(f"{where} is a {kind.replace('_type', '')}, not a tensor of images")
    elem = inp.type.tensor_type.elem_type
    if elem != TensorProto.FLOAT:
        raise OnnxFileError(
            f"{where} has element type {_dtype_name(elem)}; padnas prices networks of float32 "
            "image tensors (export the model with a float input)"
        )
    dims = inp.type.tensor_type.shape.dim
    if dims and not dims[0].HasField("dim_value"):
        dims[0].ClearField("dim_param")
        dims[0].dim_value = 1
    if not dims or not all(d.HasField("dim_value") for d in dims):
        raise OnnxFileError(
            f"{where} has no fixed size; export it with a fixed input shape (only the batch may "
            "be free)"
        )
    shape = tuple(d.dim_value for d in dims)
    if any(not 1 <= d <= MAX_DIM for d in shape) or math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise OnnxFileError(
            f"{where} has shape {list(shape)}: every size must be at least 1 and the input at "
            f"most {MAX_INPUT_ELEMENTS} values"
        )
    return inp.name, shape


def _dtype_name(dtype: int) -> str:
    from onnx import TensorProto

    try:
        return TensorProto.DataType.Name(dtype)
    except ValueError:
        return f"number {dtype} (no ONNX type)"


def check_tensors(graph, file: str) -> None:
    """Every tensor ``graph`` holds (initialisers, tensor attributes of its nodes, and those of
    its subgraphs, at any depth) agrees with its dims and dtype; :class:`OnnxFileError` at the
    first that does not."""
    from onnx import AttributeProto

    todo = [(graph, "")]
    while todo:
        g, inside = todo.pop()
        if len(g.sparse_initializer):
            t = g.sparse_initializer[0]
            raise OnnxFileError(
                f"{file}: sparse initialiser {t.values.name!r}{inside} is not supported (save the "
                "model with dense initialisers)"
            )
        for t in g.initializer:
            check_tensor(t, f"{file}: initialiser {t.name!r}{inside}")
        for i, node in enumerate(g.node):
            label = f"node {node.name or f'{node.op_type}_{i}'!r} ({node.op_type}){inside}"
            for a in node.attribute:
                where = f"{file}: {label}, attribute {a.name!r}"
                if a.type == AttributeProto.TENSOR:
                    check_tensor(a.t, where)
                elif a.type == AttributeProto.TENSORS:
                    for t in a.tensors:
                        check_tensor(t, where)
                elif a.type == AttributeProto.SPARSE_TENSOR:
                    raise OnnxFileError(f"{where}: sparse tensors are not supported")
                elif a.type == AttributeProto.GRAPH:
                    todo.append((a.g, f" in a subgraph of {label}"))
                elif a.type == AttributeProto.GRAPHS:
                    todo.extend((sub, f" in a subgraph of {label}") for sub in a.graphs)


def check_tensor(t, where: str) -> int:
    """One TensorProto: a known numeric dtype, dims in range, data in this file and exactly as
    many values as the dims claim. Returns the element count."""
    from onnx import TensorProto, helper

    dtype = t.data_type
    if dtype not in {getattr(TensorProto, n) for n in _NUMERIC}:
        if dtype in TensorProto.DataType.values():
            raise OnnxFileError(
                f"{where} has element type {_dtype_name(dtype)}, which padnas does not read "
                f"(a network's constants are {', '.join(n.lower() for n in _NUMERIC[:7])}, ...)"
            )
        raise OnnxFileError(f"{where} has element type {_dtype_name(dtype)}")
    dims = list(t.dims)
    if any(not 0 <= d <= MAX_DIM for d in dims):
        raise OnnxFileError(
            f"{where} claims dims {_dims(dims)}: every dimension must be in 0..{MAX_DIM}"
        )
    if t.data_location == TensorProto.EXTERNAL or len(t.external_data):
        raise OnnxFileError(
            f"{where} keeps its data in another file; padnas reads self-contained ONNX files "
            "(onnx.save(model, path, save_as_external_data=False))"
        )
    n = math.prod(dims)
    if t.HasField("raw_data"):
        itemsize = helper.tensor_dtype_to_np_dtype(dtype).itemsize
        have, want = len(t.raw_data), n * itemsize
        unit = "bytes"
    else:
        have, want = len(getattr(t, helper.tensor_dtype_to_field(dtype))), n
        unit = "values"
    if have != want:
        raise OnnxFileError(
            f"{where} claims dims {_dims(dims)} ({want} {unit} of {_dtype_name(dtype)}) but holds "
            f"{have} {unit}"
        )
    return n


def _dims(dims: list[int]) -> str:
    text = str(dims)
    return text if len(text) <= 60 else text[:57] + "...]"

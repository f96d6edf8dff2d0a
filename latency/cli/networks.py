"""``padnas-latency predict`` and ``measure`` of described networks.

Registered on the ``padnas-latency`` group by :mod:`latency.cli.app`; kept apart because they
work on layer-list networks (:mod:`latency.networks.description`) and on the device-transfer
estimate rather than on one space's LUT.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from latency.cli.options import (
    SPACE,
    setup,
    verbose_option,
)
from latency.lut.model import LatencyModel
from latency.lut.pool import network_pool
from latency.lut.table import load_lut, read_luts, source_line
from latency.variants import DEFAULT_PRECISION, PRECISIONS
from padnas.core import atomic_write_json
from padnas.core.cli import echo_json, handle_errors, json_option, path_option, profile_option
from padnas.core.errors import UsageError
from padnas.space import get_space


def _is_network_file(target: str) -> bool:
    """True for a NET.json or a MODEL.onnx; an existing directory or other file, or a path that
    does not exist, is refused here rather than parsed as an architecture string."""
    if target.endswith((".json", ".onnx")):
        return True
    try:
        exists = Path(target).exists()
    except OSError:  # e.g. an arch string too long for a file name: not a path
        exists = False
    if exists:
        kind = "a directory" if Path(target).is_dir() else "a file that is not .json or .onnx"
        raise UsageError(f"{target} is {kind}: predict takes {_TARGETS}")
    if "/" in target or "\\" in target:
        raise UsageError(f"file not found: {target} (predict takes {_TARGETS})")
    return False


_TARGETS = "a NET.json, a MODEL.onnx or an ARCH string"


def _networks(path: str, names: tuple[str, ...]):
    """The networks of a NET.json, or the one network a MODEL.onnx computes."""
    from latency.networks.checks import load_networks, select_networks

    if str(path).endswith(".onnx"):
        from latency.networks.onnx_import import read_onnx

        net = read_onnx(path)
        return select_networks({net.name: net}, names)
    return select_networks(load_networks(path), names)


def _network_tables(path: Path, precision: str | None = None):
    """``net -> table``: the pooled table of ``path`` a network is priced from
    (:mod:`latency.lut.pool`): every family of the device at the network's input resolution and
    ``precision`` (None: the file's one precision, else fp32), one price per unit whatever else
    the network holds. The file is read once and each resolution pooled once, however many
    networks are priced."""
    _, luts, _ = read_luts(path)
    if precision is None:
        held = {lut.precision for lut in luts}
        precision = held.pop() if len(held) == 1 else DEFAULT_PRECISION
    pools: dict[int | None, object] = {}

    def table_for(net):
        res = net.input_hw[0] if net.input_hw[0] == net.input_hw[1] else None
        if res not in pools:
            pools[res] = network_pool(luts, res, precision)
        return pools[res]

    return table_for


@click.command()
@click.argument("target")
@profile_option(
    "--lut",
    "lut_path",
    required=True,
    help="LUT JSON, a device profile holding LUTs, or a profile name (e.g. pixel3).",
)
@click.option(
    "--space",
    "-s",
    type=SPACE,
    default=None,
    help="Space of an ARCH [default: large]. A network (NET.json, MODEL.onnx) is always priced "
    "from the device's pooled table of every family, so --space does not change its price.",
)
@click.option("--net", "names", multiple=True, help="Network(s) of NET.json [default: all].")
@click.option("--breakdown", is_flag=True, help="Print every unit's latency and source.")
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=None,
    help="Price with the fp32 or int8 table of --lut [default: the file's own, else fp32].",
)
@click.option(
    "--resolution",
    "-r",
    type=int,
    default=None,
    help="An ARCH's input resolution, when --lut holds tables at several [default: the one].",
)
@json_option
@verbose_option
@handle_errors
def predict(target, lut_path, space, names, breakdown, precision, resolution, as_json, verbose):
    """Predicted latency of a network (NET.json or MODEL.onnx) or an architecture (ARCH) from a
    LUT.

    Sums the LUT entry of each layer; layers the LUT lacks are priced by the regression
    fallback fitted on the LUT's own entries. The output says how many ms came from which
    source (measured, estimate, regression, mock); the LUT's calibration applies to the total.
    A NET.json holds one network or {"networks": {...}} (see docs/network-format.md); a
    MODEL.onnx is read as one (see `padnas-latency describe`), and refused, naming the node, when
    a node of it maps to no layer.

    \b
    Examples:
      padnas-latency predict latency/data/pixel3_published.json --lut pixel3
      padnas-latency predict mobilenet.onnx --lut pixel3 --breakdown
      padnas-latency predict K3E1-K5E3-ID-... --space basic --lut device_profiles/pixel3.json
      padnas-latency predict mobilenet.onnx --lut host-int8.json
    """
    setup(verbose)

    if not _is_network_file(target):
        if names:
            raise UsageError("--net selects networks of a NET.json, not of an ARCH")
        sp = get_space(space or "large")
        arch = sp.validate(target)
        lut = load_lut(lut_path, sp.family, resolution, precision=precision)
        model = LatencyModel.from_lut(lut, sp, fill_missing=True)
        ms = float(model.predict([arch])[0])
        parts = [(k, model.entries[k]["source"], part) for k, part in model.breakdown(arch)]
        if as_json:
            rows = [(k.split("-", 1)[0], k, p, src) for k, src, p in parts]
            doc = _prediction_doc(str(arch), ms, lut, rows)
            echo_json({"luts": [_lut_doc(lut)], "predictions": [doc]})
            return
        line = source_line((src, part) for _, src, part in parts)
        click.echo(f"{arch}: {ms:.2f} ms on {lut.device_name} ({lut.label} LUT{_cal(lut)})")
        click.echo(f"  sources: {line}")
        if breakdown:
            for key, part in model.breakdown(arch):
                click.echo(f"    {part:9.4f} ms  {model.entries[key]['source']:<10} {key}")
        _warn(lut, ms)
        return
    docs, luts = [], {}
    if space is not None:
        click.echo(
            f"note: --space {space} picks an ARCH's table; networks are priced from the "
            "device's pooled table of every family",
            err=True,
        )
    table_for = _network_tables(lut_path, precision)
    for net in _networks(target, names):
        lut = table_for(net)
        pred = _predict(net, lut)
        if as_json:
            luts[lut.label] = _lut_doc(lut)
            doc = _prediction_doc(net.name, pred.ms, lut, pred.rows)
            doc["raw_ms"] = round(pred.raw_ms, 5)
            published = net.meta.get(_target_field(lut.device_name))
            if published is not None:
                doc["published_ms"] = published
            docs.append(doc)
            continue
        click.echo(
            f"{net.name}: {pred.ms:.2f} ms on {lut.device_name} ({lut.label} LUT"
            f"{_cal(lut)})" + _published(net, lut.device_name, pred.ms)
        )
        click.echo(f"  sources: {pred.source_line()}")
        if breakdown:
            for kind, key, ms, src in pred.rows:
                held = "+".join(_families(lut, key) or ["-"])
                click.echo(f"    {ms:9.4f} ms  {src:<10} {kind:<10} {held:<15} {key}")
        _warn(lut, pred.ms)

    if as_json:
        echo_json({"luts": list(luts.values()), "predictions": docs})


def _warn(lut, ms: float) -> None:
    note = lut.prediction_warning(ms)
    if note:
        click.echo(note, err=True)


def _lut_doc(lut) -> dict:
    """The LUT a prediction used, as ``predict --json`` reports it (a pool names its LUTs)."""
    doc = {
        "device": lut.device_name,
        "lut": lut.label,
        "precision": lut.precision,
        "calibration": lut.calibration,
    }
    if "pooled" in lut.provenance:
        doc["pooled"] = lut.provenance["pooled"]
    return doc


def _families(lut, key: str) -> list[str] | None:
    """The families whose tables hold ``key`` (a pooled table only; None for regression)."""
    return lut.provenance.get("entry_families", {}).get(key)


def _prediction_doc(name: str, ms: float, lut, rows) -> dict:
    """One prediction: total ms (calibrated), ms per source, and each unit with its source."""
    return {
        "name": name,
        "ms": round(ms, 5),
        "unit": "ms",
        "lut": lut.label,
        "source_ms": _source_ms(rows),
        # beyond the range an estimated table was fitted on (null: within it, or measured)
        "warning": lut.prediction_warning(ms),
        "units": [
            {
                "kind": kind,
                "key": key,
                "ms": round(part, 5),
                "source": src,
                **({"families": _families(lut, key)} if "pooled" in lut.provenance else {}),
            }
            for kind, key, part, src in rows
        ],
    }


def _source_ms(rows) -> dict[str, float]:
    """ms of ``(kind, key, ms, source)`` rows summed per source."""
    by_source: dict[str, float] = {}
    for _, _, part, src in rows:
        by_source[src] = by_source.get(src, 0.0) + part
    return {k: round(v, 5) for k, v in by_source.items()}


def measurement_doc(name: str, stats) -> dict:
    """One measured latency as ``measure --json`` reports it (docs/json-output.md)."""
    doc = {
        "name": name,
        "ms": round(stats.ms, 5),
        "unit": "ms",
        "p10": round(stats.p10, 5),
        "p90": round(stats.p90, 5),
        "n": stats.n,
        "source": stats.source,
    }
    if stats.extra:
        doc["extra"] = stats.extra
    return doc


def lut_check_doc(lut_path, lut, pred_ms: float, measured_ms: float, rows) -> dict:
    """A LUT's prediction next to a measurement: the LUT, its ms per source and its error."""
    return {
        "file": str(lut_path),
        "lut": lut.label,
        "ms": round(pred_ms, 5),
        "unit": "ms",
        "error_pct": round((pred_ms - measured_ms) / measured_ms * 100, 3),
        "source_ms": _source_ms(rows),
    }


def _target_field(device: str) -> str:
    from latency.transfer.estimate import target_field

    return target_field(device)


def _predict(net, lut):
    from latency.networks.latency import predict_network

    return predict_network(net, lut)


def _cal(lut) -> str:
    c = lut.calibration
    if not c:
        return ""
    return f"; calibrated {c['scale']:.4g} · sum + {c['offset_ms']:.3f} ms"


def _published(net, device: str, ms: float) -> str:
    from latency.transfer.estimate import target_field

    value = net.meta.get(target_field(device))
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        return ""
    return f"; published {value:g} ms ({(ms - value) / value * 100:+.1f}%)"


def measure_network_file(
    target: str, names: tuple[str, ...], backend, lut_path=None, *, as_json: bool = False
) -> list[dict]:
    """``padnas-latency measure NET.json``: export each network whole, check it against
    PyTorch, time it; with ``lut_path`` also price it with the LUT. Prints a line per network,
    or (``as_json``) prints nothing and returns the networks' :func:`measurement_doc`."""
    from latency.networks.latency import measure_network

    docs = []
    table_for = _network_tables(lut_path) if lut_path is not None else None
    for net in _networks(target, names):
        stats = measure_network(net, backend)
        doc = measurement_doc(net.name, stats)
        docs.append(doc)
        pred = _price_beside(doc, net, lut_path, table_for, stats) if table_for else None
        if not as_json:
            _echo_measurement(net.name, stats, backend, lut_path, pred)
    return docs


def _price_beside(doc: dict, net, lut_path, table_for, stats):
    """Price ``net`` with its table from ``lut_path`` (``table_for``: see
    :func:`_network_tables`), record the check in ``doc``; the prediction."""
    lut = table_for(net)
    pred = _predict(net, lut)
    doc["lut_check"] = lut_check_doc(lut_path, lut, pred.ms, stats.ms, pred.rows)
    return pred


def _echo_measurement(name: str, stats, backend, lut_path, pred) -> None:
    """The text lines of one timed network or model file, and its LUT price beside it."""
    click.echo(
        f"{name}: {stats.ms:.3f} ms (p10 {stats.p10:.3f}, p90 {stats.p90:.3f}, n={stats.n}, "
        f"source {stats.source}, device {backend.name})"
    )
    if pred is not None:
        err = (pred.ms - stats.ms) / stats.ms * 100
        click.echo(
            f"  LUT {lut_path}: {pred.ms:.3f} ms ({err:+.1f}% vs measured; {pred.source_line()})"
        )


def measure_onnx_file(
    target: str,
    backend,
    lut_path=None,
    *,
    as_json: bool = False,
    precision: str = DEFAULT_PRECISION,
) -> dict:
    """``padnas-latency measure MODEL.onnx``: convert it as the LUT's blocks are (checked
    against ONNX Runtime; int8: full-integer, calibrated on the task's images), time it; with
    ``lut_path`` also price the layer list it reads as with the table of that precision.
    Prints the result, or (``as_json``) prints nothing and returns its :func:`measurement_doc`."""
    from latency.networks.latency import measure_onnx_model

    net = _networks(target, ())[0] if lut_path is not None else None  # refuse before timing
    table_for = _network_tables(lut_path, precision) if net is not None else None
    stats = measure_onnx_model(target, backend, precision=precision)
    doc = measurement_doc(target, stats)
    pred = _price_beside(doc, net, lut_path, table_for, stats) if net is not None else None
    if not as_json:
        _echo_measurement(target, stats, backend, lut_path, pred)
    return doc


@click.command()
@click.argument("model")
@path_option("--output", "-o", default=None, help="Write the layer list here [default: stdout].")
@verbose_option
@handle_errors
def describe(model, output, verbose):
    """Read a MobileNet-style MODEL.onnx as a layer list (docs/network-format.md).

    Conv, depthwise conv, inverted bottleneck (expand / depthwise / squeeze-excite / linear
    project, residual add), grouped 1x1 convs with channel shuffle, strided max and average
    pooling, ResNet basic blocks (identity or 1x1 projection shortcut), ShuffleNetV2 units
    (channel split, two branches, concat, shuffle), ReLU / ReLU6 / h-swish / swish / sigmoid /
    h-sigmoid, global pooling and fully connected layers are mapped; any other node is refused
    with its name and op type. The written file can be read, edited, and given
    to `predict` or `measure` like any NET.json.

    \b
    Examples:
      padnas-latency describe mobilenet.onnx -o mobilenet.json
      padnas-latency describe mobilenet.onnx | less
    """
    setup(verbose)

    if not model.endswith(".onnx"):
        raise UsageError(f"describe reads a MODEL.onnx; got {model}")
    (net,) = _networks(model, ())
    doc = net.to_dict()
    if output is None:
        click.echo(json.dumps(doc, indent=1))
        return
    atomic_write_json(output, doc)
    kinds: dict[str, int] = {}
    for layer in net.layers:
        kinds[layer.type] = kinds.get(layer.type, 0) + 1
    parts = ", ".join(f"{n} {t}" for t, n in kinds.items())
    click.echo(
        f"wrote {output}: {net.name}, {len(net.layers)} layers ({parts}), "
        f"{net.macs / 1e6:.1f} M MACs, input {net.input_hw[0]}x{net.input_hw[1]}"
    )

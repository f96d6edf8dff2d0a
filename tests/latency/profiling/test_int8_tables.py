"""int8 tables beside fp32 ones (issue 24): a store and a LUT per precision, a profile holding
both, the float one by default and the int8 one on request, never pooled together; a search
planned under the int8 table; and, slow, the host int8 table of the basic space built for real
on small shapes."""

from __future__ import annotations

import json

import pytest

from latency.backends.mock import MockBackend
from latency.devices import load_profile
from latency.lut.pool import pool_luts
from latency.lut.table import Lut, LutError, load_lut
from latency.profiling.profile import build_lut, profile_space, stored_lut
from latency.profiling.store import MeasurementStore, StoreError
from padnas.run.plan import plan_search
from padnas.space import get_space

SPACE = get_space("basic")


def _tables(root) -> tuple[Lut, Lut]:
    mock = MockBackend(load_profile("mock"))
    out = []
    for precision in ("fp32", "int8"):
        store = MeasurementStore("mock", root, precision=precision)
        profile_space(SPACE, mock, store, progress=False)
        out.append(build_lut(SPACE, store, {"name": "mock", "transport": "mock"}))
    return out[0], out[1]


def test_each_precision_has_its_own_store_and_lut(tmp_path):
    fp32, int8 = _tables(tmp_path)
    assert (tmp_path / "mock.jsonl").is_file() and (tmp_path / "mock.int8.jsonl").is_file()
    assert fp32.precision == "fp32" and int8.precision == "int8"
    assert fp32.label == "basic@224" and int8.label == "basic@224 int8"
    assert fp32.entries.keys() == int8.entries.keys()
    ratio = {k: int8.ms(k) / fp32.ms(k) for k in fp32.entries}
    assert all(r == pytest.approx(0.6) for r in ratio.values())  # the mock's int8_scale
    # the precision survives a file; a float LUT's file has no field for it (old files load)
    path = int8.save(tmp_path / "int8.json")
    assert json.loads(path.read_text())["precision"] == "int8"
    assert load_lut(path).precision == "int8"
    assert "precision" not in fp32.to_dict()
    with pytest.raises(StoreError, match="precision 'int4'"):
        MeasurementStore("mock", tmp_path, precision="int4")


def test_a_profile_holds_both_and_gives_fp32_unless_asked(tmp_path):
    fp32, int8 = _tables(tmp_path)
    profile = {**load_profile("mock"), "luts": [int8.to_dict(), fp32.to_dict()]}
    profile.pop("_path", None)
    path = tmp_path / "both.json"
    path.write_text(json.dumps(profile))
    assert load_lut(path, family="basic").precision == "fp32"
    assert load_lut(path, family="basic", precision="int8").precision == "int8"
    one = tmp_path / "float-only.json"
    one.write_text(json.dumps({**profile, "luts": [fp32.to_dict()]}))
    with pytest.raises(LutError, match=r"holds no LUT for basic int8; it holds: basic@224"):
        load_lut(one, family="basic", precision="int8")
    with pytest.raises(LutError, match="cannot pool LUTs of different precisions"):
        pool_luts([fp32, int8])
    bad = {**int8.to_dict(), "precision": "int4"}
    with pytest.raises(LutError, match="precision 'int4' is not one of fp32, int8"):
        Lut.from_dict(bad)


def test_a_search_is_planned_under_the_int8_table(padnas_cache):
    with pytest.raises(LutError, match="--precision int8 first"):
        plan_search("mock", lut_precision="int8")
    profile_space(
        SPACE,
        MockBackend(load_profile("mock")),
        MeasurementStore("mock", None, precision="int8"),
        progress=False,
    )
    plan = plan_search("mock", lut_precision="int8")
    assert plan.lut.precision == "int8" and plan.settings.lut["label"] == "basic@224 int8"
    assert any("mock.int8.jsonl" in m for m in plan.messages)


@pytest.fixture(scope="module")
def host_int8(tmp_path_factory):
    """The host's int8 store of the basic space at 32 px, measured once for this module's slow
    tests (a private cache)."""
    from latency.backends.host import HostBackend

    root = tmp_path_factory.mktemp("host-int8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PADNAS_CACHE", str(root))
        store = MeasurementStore("host", precision="int8")
        host = HostBackend(load_profile("host"), min_s=0.02, max_s=0.2)
        try:
            report = profile_space(SPACE, host, store, resolution=32, passes=1, progress=False)
        finally:
            host.close()
        yield root, report


@pytest.mark.slow
def test_the_host_int8_table_of_the_basic_space_builds_on_small_shapes(host_int8, monkeypatch):
    """Every variant of the basic space at 32 px exported int8, checked against PyTorch and
    timed on the host with the guarded loop; the LUT says int8 and was measured."""
    root, report = host_int8
    monkeypatch.setenv("PADNAS_CACHE", str(root))
    assert report.failed == [] and report.measured == report.total
    lut = stored_lut(load_profile("host"), SPACE, resolution=32, precision="int8")
    assert lut.precision == "int8" and lut.sources() == {"measured"}
    assert all(e["ms"] > 0 for e in lut.entries.values())
    sidecars = [json.loads(p.read_text()) for p in (root / "tflite").rglob("int8/*.json")]
    assert len(sidecars) == report.total
    assert all(0 < s["check_int8_rel_rms"] <= 0.1 for s in sidecars)


@pytest.mark.slow
def test_a_phone_without_published_int8_figures_gets_the_host_int8_table_and_a_warning(
    host_int8, monkeypatch, tmp_path, latency_cli
):
    """``estimate --precision int8`` for the Pixel 3 (no published int8 latencies): the host's
    int8 timings, every entry ``source: host-int8``, a warning that says what they are, put
    beside the float tables of the profile without touching them."""
    import shutil

    from repo_support import PIXEL3

    from latency.transfer.int8 import run_int8_estimate

    root, _ = host_int8
    monkeypatch.setenv("PADNAS_CACHE", str(root))
    (lut,) = run_int8_estimate("pixel3", host_device="host", resolution=32, progress=False)
    host = stored_lut(load_profile("host"), SPACE, resolution=32, precision="int8")
    assert lut.device_name == "pixel3" and lut.precision == "int8"
    assert lut.sources() == {"host-int8"}
    assert {k: e["ms"] for k, e in lut.entries.items()} == {
        k: e["ms"] for k, e in host.entries.items()
    }
    assert "not of pixel3" in lut.source_warning() and "never read its milliseconds" in (
        lut.source_warning()
    )
    prof = tmp_path / "pixel3.json"
    shutil.copy(PIXEL3, prof)
    from latency.transfer.estimate import update_profile

    update_profile(prof, [lut])
    assert load_lut(prof, "basic", 224).sources() == {"estimate"}  # the float table stays
    assert load_lut(prof, "basic", 32, precision="int8").sources() == {"host-int8"}
    arch = "-".join(["K3E1"] + ["K3E3"] * 6 + ["K5E6"] * 15)
    one = lut.save(tmp_path / "pixel3-int8-32.json")  # the profile holds int8 at 224 too
    r = latency_cli("predict", arch, "--space", "basic", "--lut", one)
    assert r.exit_code == 0, r.output
    assert "basic@32 int8 LUT" in r.stdout and "warning: the pixel3 int8 table" in r.stderr
    # the same table picked out of the profile by its resolution and precision
    r2 = latency_cli(
        "predict", arch, "--space", "basic", "--lut", prof, "-r", 32, "--precision", "int8"
    )
    assert r2.exit_code == 0, r2.output
    assert r2.stdout == r.stdout


def test_an_int8_estimate_refuses_published_int8_figures_it_cannot_fit(tmp_path):
    from latency.transfer.estimate import DEFAULT_PUBLISHED
    from latency.transfer.fit import TransferError
    from latency.transfer.int8 import run_int8_estimate

    data = json.loads(DEFAULT_PUBLISHED.read_text())
    name = next(iter(data["networks"]))
    data["networks"][name]["pixel3_int8_latency_ms"] = 30.0
    published = tmp_path / "with-int8.json"
    published.write_text(json.dumps(data))
    with pytest.raises(TransferError, match="fitting an int8 transfer"):
        run_int8_estimate("pixel3", published=published, host_device="mock", progress=False)


def test_a_pixel3_int8_table_gets_a_percentile_window_and_its_warning(tmp_path):
    """The paper's 60-70 ms is a float Pixel 3 window: an int8 table of the Pixel 3 is windowed
    by its own percentiles, and a host-int8 table's warning is the plan's."""
    fp32, _ = _tables(tmp_path)
    entries = {k: {**e, "source": "host-int8"} for k, e in fp32.entries.items()}
    lut = Lut(
        device={"name": "pixel3"},
        family="basic",
        space_signature=fp32.space_signature,
        resolution=224,
        entries=entries,
        provenance={"warning": "the pixel3 int8 table holds int8 timings of the host"},
        precision="int8",
    )
    path = lut.save(tmp_path / "p3-int8.json")
    plan = plan_search(str(path))
    assert "percentile" in plan.settings.window_rule
    assert plan.warnings == ["warning: the pixel3 int8 table holds int8 timings of the host"]

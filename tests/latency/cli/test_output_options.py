"""``padnas-latency``'s own output options: a path that cannot be written is refused
before anything is measured -- one line naming the option, the path and why (a file in the way,
a directory where the file goes, read-only, no space), exit 2 -- and a write that fails late
(the disk filled up meanwhile) says the same, leaving the old file whole."""

from __future__ import annotations

import errno
import os
import shutil

import pytest
from repo_support import PIXEL3

from padnas.core import atomic_write_json
from padnas.core.errors import PathError


@pytest.fixture
def blocker(tmp_path):
    """A plain file standing where a folder of an output path must be."""
    path = tmp_path / "file"
    path.write_text("mine")
    return path


def _store(padnas_cache):
    return padnas_cache / "measurements"


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["export-lut", "--device", "mock", "--space", "basic", "-o", "{B}/sub/lut.json"],
            ["cannot create -o {B}/sub/lut.json", "{B} is a file, not a directory"],
        ),
        (
            ["export-lut", "--device", "mock", "--space", "basic", "-o", "{T}"],
            ["'-o'", "{T}' is a directory"],
        ),  # click's own check, also one line
        (
            ["profile", "--device", "mock", "--space", "basic", "-q", "--report", "{B}/r.json"],
            ["cannot create --report {B}/r.json", "is a file, not a directory"],
        ),
        (
            ["profile", "--device", "mock", "--space", "basic", "-q", "--store", "{B}/s"],
            ["cannot create --store {B}/s: {B} is a file, not a directory"],
        ),
        (
            ["validate", "--device", "mock", "--lut", "{L}", "-o", "{B}/x/lut.json"],
            ["cannot create -o {B}/x/lut.json"],
        ),
        (
            ["validate", "--device", "mock", "--lut", "{L}", "--report", "{B}/r.json"],
            ["cannot create --report {B}/r.json"],
        ),
        (
            ["estimate", "--device", "pixel3", "--space", "basic", "-o", "{B}/e.json"],
            ["cannot create -o {B}/e.json"],
        ),
        (
            ["estimate", "--device", "pixel3", "--space", "basic", "--update", "{T}/none.json"],
            ["--update {T}/none.json: no such device profile"],
        ),
    ],
)
def test_output_that_cannot_be_written_is_refused_first(
    latency_cli, expect_error, padnas_cache, tmp_path, blocker, lut_file, args, words
):
    def fill(text: str) -> str:
        return text.format(B=blocker, T=tmp_path, L=lut_file)

    lut_before = lut_file.read_bytes()
    expect_error(latency_cli(*map(fill, args)), 2, *map(fill, words))
    assert not _store(padnas_cache).exists()  # nothing measured, no store started
    assert blocker.read_text() == "mine" and lut_file.read_bytes() == lut_before


def _statvfs_with(monkeypatch, *, flag: int = 0, bavail: int | None = None) -> None:
    """Make every folder look read-only (``flag``) or full (``bavail`` 0) to ``statvfs``: a
    test cannot mount a read-only or full file system (and root may write anywhere)."""
    real = os.statvfs

    def fake(path):
        s = real(path)
        avail = s.f_bavail if bavail is None else bavail
        return os.statvfs_result((*s[:4], avail, *s[5:8], s.f_flag | flag, s.f_namemax))

    monkeypatch.setattr(os, "statvfs", fake)


@pytest.mark.parametrize(
    "flag, bavail, why",
    [(os.ST_RDONLY, None, "the file system is read-only"), (0, 0, "no space left on the device")],
)
def test_read_only_or_full_file_system(
    latency_cli, expect_error, padnas_cache, tmp_path, monkeypatch, flag, bavail, why
):
    out = tmp_path / "luts" / "mock.json"
    _store(padnas_cache).mkdir(parents=True)  # the cache itself is fine; only -o is checked
    _statvfs_with(monkeypatch, flag=flag, bavail=bavail)
    r = latency_cli("export-lut", "--device", "mock", "--space", "basic", "-o", out)
    expect_error(r, 2, f"cannot create -o {out}: {why}; choose another path")
    assert not out.parent.exists()


def test_a_write_that_fails_late_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "lut.json"
    target.write_text('{"old": 1}\n')

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(PathError, match=f"cannot create the file {target}: no space left"):
        atomic_write_json(target, {"new": 2})
    assert target.read_text() == '{"old": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["lut.json"]  # no temporary file left


def test_validate_in_place_into_a_bundle_is_refused_before_measuring(
    latency_cli, expect_error, frozen, tmp_path
):
    """A device profile holding several LUTs cannot take the calibrated one in place: said
    before the networks are measured (it was said after), with the profile untouched."""
    bundle = tmp_path / "pixel3.json"
    shutil.copy(PIXEL3, bundle)
    before = frozen(bundle)
    r = latency_cli("validate", "--lut", bundle, "--device", "mock", "--n", 4, "-q")
    expect_error(
        r, 2, f"{bundle} holds several LUTs; write the calibrated one with -o", unchanged=before
    )

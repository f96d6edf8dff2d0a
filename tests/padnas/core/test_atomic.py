"""Record logs are appended to only as regular files: a symbolic link or a FIFO planted in a
log's place is refused (exit 2 through the CLI) and whatever it points to is left as it was."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from padnas.core import append_jsonl, read_jsonl
from padnas.core.errors import PathError


def test_append_then_read(tmp_path):
    log = tmp_path / "log.jsonl"
    append_jsonl(log, [{"a": 1}])
    append_jsonl(log, [{"a": 2}])
    assert read_jsonl(log) == [{"a": 1}, {"a": 2}]


def test_a_symlink_in_a_logs_place_is_refused_and_its_target_kept(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    log = tmp_path / "log.jsonl"
    log.symlink_to(target)
    with pytest.raises(PathError, match="is a symbolic link"):
        append_jsonl(log, [{"a": 1}])
    assert target.read_text() == "keep me\n"


def test_a_fifo_in_a_logs_place_is_refused_without_blocking(tmp_path):
    log = tmp_path / "log.jsonl"
    os.mkfifo(log)
    with pytest.raises(PathError, match="not a regular file"):
        append_jsonl(log, [{"a": 1}])


def test_profile_refuses_a_store_that_is_a_symlink(tmp_path, padnas_cache):
    """The link points to an empty file, which reads as an empty store: the first append is
    where the link is met, and refused."""
    from latency.cli.app import main

    target = tmp_path / "precious.txt"
    target.write_text("")
    store = padnas_cache / "measurements" / "mock.jsonl"
    store.parent.mkdir(parents=True)
    store.symlink_to(target)
    res = CliRunner().invoke(
        main, ["profile", "--device", "mock", "--space", "basic", "--limit", "2"]
    )
    assert res.exit_code == 2, res.output
    assert "is a symbolic link" in res.output and target.read_text() == ""

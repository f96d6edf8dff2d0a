"""``padnas space | supernet train | evaluate | train``: results, and bad input as one line."""

from __future__ import annotations

import json
import math

import pytest
import torch

from padnas.cli import main

torch.set_num_threads(1)

ARCH = "K3E1-" + "-".join(["K3E3", "K5E6", "ID", "K7E3"] * 5) + "-K3E6"


def test_space_json_and_text(cli):
    r = cli(main, "space", "--space", "large", "--json")
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert int(d["size"]) == 3 * 18**6 * 19**15 and d["num_layers"] == 22
    assert d["layers"][0]["ops"] == ["K3E1", "K5E1", "K7E1"]
    r = cli(main, "space")
    assert r.exit_code == 0 and str(3 * 6**6 * 7**15) in r.stdout and "K7E6" in r.stdout


def test_unknown_space_preset_data(cli, expect_error):
    expect_error(cli(main, "space", "--space", "huge"), 2, "huge", "basic, large")
    expect_error(cli(main, "supernet", "train", "--preset", "fast"), 2, "quick", "paper")
    expect_error(
        cli(main, "supernet", "train", "--data", "cifar10"),
        2,
        "fashion, fashion:DIR, mnist5k, digits",
    )
    expect_error(
        cli(main, "train", "--arch", ARCH, "--data", "imagefolder:/no/such/dir"),
        2,
        "/no/such/dir",
        "PATH/train/<class>",
    )
    expect_error(cli(main, "supernet", "train", "--resolution", "48"), 2, "multiple of 32")
    expect_error(cli(main, "supernet", "train", "--dropped-strides", "7"), 2, "0<=x<=5")


@pytest.fixture(scope="module")
def supernet_dir(tmp_path_factory, cli):
    out = tmp_path_factory.mktemp("sn")
    r = cli(
        main,
        "supernet",
        "train",
        "--data",
        "digits",
        "--epochs",
        "1",
        "--batch-size",
        "256",
        "--out",
        out,
    )
    assert r.exit_code == 0, r.output
    assert (out / "checkpoint.pt").is_file() and (out / "train_log.jsonl").is_file()
    return out


def test_evaluate_random_and_given_archs(supernet_dir, cli):
    r = cli(main, "evaluate", "--supernet", supernet_dir, "--arch", ARCH, "--random", "2", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # one document: the whole of stdout
    assert doc["supernet"] == str(supernet_dir) and doc["space"] == "basic"
    assert doc["data"] == "digits" and doc["split"] == "val" and doc["recalibrated"] is True
    assert doc["rank_by"] == "log_likelihood"  # the quick preset's; digits has no held-out images
    assert doc["recal_images"] >= 1 and doc["seed"] == 0
    assert doc["precision"] == ("bf16" if torch.cuda.is_available() else "fp32")
    recs = doc["results"]
    assert len(recs) == 3 and recs[0]["arch"] == ARCH
    assert all(0 <= x["accuracy"] <= 1 and x["macs"] > 1e8 and x["params"] > 1e6 for x in recs)
    # the mean log-likelihood of the true class (its value is checked in test_oneshot.py)
    assert all(-math.inf < x["log_likelihood"] <= 0 for x in recs)
    # the text form prints the same figures, one line per architecture
    r = cli(main, "evaluate", "--supernet", supernet_dir, "--arch", ARCH, "--random", "2")
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [f"{x['accuracy']:.4f}" for x in recs]
    assert [line.split()[2] for line in lines] == [f"{x['log_likelihood']:+.4f}" for x in recs]
    assert [line.split()[-1] for line in lines] == [x["arch"] for x in recs]


def test_evaluate_bad_archs(supernet_dir, cli, expect_error):
    short = ARCH.rsplit("-", 1)[0]
    expect_error(
        cli(main, "evaluate", "--supernet", supernet_dir, "--arch", short), 2, "21 layers", "22"
    )
    bad_first = "K3E6" + ARCH[4:]
    expect_error(
        cli(main, "evaluate", "--supernet", supernet_dir, "--arch", bad_first),
        2,
        "layer 0 does not allow K3E6",
        "K3E1, K5E1, K7E1",
    )
    bad_op = ARCH.replace("K5E6", "K4E6", 1)
    expect_error(
        cli(main, "evaluate", "--supernet", supernet_dir, "--arch", bad_op),
        2,
        "K4E6",
        "kernel in 3,5,7",
    )
    expect_error(
        cli(main, "evaluate", "--supernet", supernet_dir / "nope", "--random", "1"),
        2,
        "no checkpoint",
    )
    # digits has fewer images than the quick preset's pool: nothing is left to hold out
    expect_error(
        cli(main, "evaluate", "--supernet", supernet_dir, "--random", "1", "--split", "holdout"),
        2,
        "data digits keeps no held-out images",
        "--split val",
    )


def test_resume_refuses_another_training(supernet_dir, cli, expect_error):
    r = cli(
        main,
        "supernet",
        "train",
        "--data",
        "digits",
        "--epochs",
        "1",
        "--batch-size",
        "256",
        "--lr",
        "0.3",
        "--out",
        supernet_dir,
    )
    # the refusal comes once training starts, after the line announcing it
    expect_error(r, 2, "belongs to another training", "--no-resume", alone=False)


def test_train_standalone(tmp_path, cli):
    r = cli(
        main,
        "train",
        "--arch",
        ARCH,
        "--data",
        "digits",
        "--epochs",
        "1",
        "--batch-size",
        "256",
        "--out",
        tmp_path,
    )
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    assert rec["arch"] == ARCH and 0 <= rec["test_accuracy"] <= 1
    assert rec["macs_224"] > 1e8 and (tmp_path / "checkpoint.pt").is_file()

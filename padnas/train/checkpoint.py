"""Training checkpoints: ``torch.save`` of state dicts and plain metadata, written atomically.

A checkpoint holds tensors, numbers, strings, lists and dicts only, so it loads with
``torch.load(weights_only=True)``: no pickled code runs when a user opens a file they were handed.
Its metadata (space, proxy, classes, data, seed, schedule) is enough to rebuild the network.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import Module

from padnas.core import atomic_write_bytes
from padnas.core.errors import UsageError
from padnas.nn.supernet import ChildNet, Supernet
from padnas.space import Proxy, SearchSpace

CHECKPOINT = "checkpoint.pt"
#: 2: proxy networks take the deployed network's residual connections (format 1 took them from
#: the proxy's rounded widths, so its weights belong to another topology)
CHECKPOINT_FORMAT = 2


class CheckpointError(UsageError):
    """A missing, foreign or mismatched checkpoint (bad input: exit code 2)."""


def save_checkpoint(path: str | Path, payload: dict) -> None:
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def checkpoint_path(path: str | Path) -> Path:
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() else path


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint file, or a directory holding ``checkpoint.pt``."""
    path = checkpoint_path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train first (padnas supernet train)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a padnas checkpoint ({type(exc).__name__})") from None
    if isinstance(ckpt, dict) and ckpt.get("format") == 1:
        raise CheckpointError(
            f"{path} was written by an older padnas (checkpoint format 1), whose proxy networks "
            "had residual connections the deployed network lacks: train again"
        )
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a padnas checkpoint (format {CHECKPOINT_FORMAT})")
    _check_contents(path, ckpt)
    return ckpt


#: what a checkpoint of each ``meta["kind"]`` holds, in the words its errors use
_HOLDS = {"supernet": "a supernet", "child": "a stand-alone network"}
#: the most classes a checkpoint may claim (ImageNet-21k has ~22k; a bound keeps a forged
#: count from allocating a classifier of any size)
MAX_CLASSES = 100_000
_FORGED = "it is damaged or was not written by padnas: train again"


def _check_contents(path: Path, ckpt: dict) -> None:
    """Everything the loaders read, checked before use: a ``meta`` object of a known kind with
    its space, proxy and class count (and a child's arch), the weights and the step."""
    meta = ckpt.get("meta")
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} has no metadata; {_FORGED}")
    kind = meta.get("kind")
    if kind not in _HOLDS:
        raise CheckpointError(
            f"{path} holds an unknown kind of network ({str(kind)[:20]!r}); {_FORGED}"
        )
    wanted = {"space": dict, "proxy": dict, "num_classes": int} | (
        {"arch": str} if kind == "child" else {}
    )
    for key, typ in wanted.items():
        if not isinstance(meta.get(key), typ) or isinstance(meta.get(key), bool):
            raise CheckpointError(f"{path}: the metadata has no valid {key!r}; {_FORGED}")
    if not 1 <= meta["num_classes"] <= MAX_CLASSES:
        raise CheckpointError(
            f"{path}: num_classes must be 1..{MAX_CLASSES}, got {meta['num_classes']}; {_FORGED}"
        )
    model, step = ckpt.get("model"), ckpt.get("global_step")
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise CheckpointError(f"{path} holds no network weights; {_FORGED}")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"{path}: global_step must be a count >= 0; {_FORGED}")


def _load_net(path: str | Path, kind: str, build: Callable[[SearchSpace, Proxy, dict], Module]):
    """The network of ``kind`` stored at ``path`` (made by ``build(space, proxy, meta)``, then
    given the stored weights) and the checkpoint's metadata; the wrong kind is refused."""
    ckpt = load_checkpoint(path)
    meta = ckpt["meta"]
    if meta["kind"] != kind:
        raise CheckpointError(f"{path} holds {_HOLDS[meta['kind']]}, not {_HOLDS[kind]}")
    try:
        net = build(SearchSpace.from_dict(meta["space"]), Proxy(**meta["proxy"]), meta)
    except (ValueError, TypeError) as exc:  # SpaceError is a ValueError
        raise CheckpointError(f"{path}: the metadata is not valid ({exc}); {_FORGED}") from None
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError:
        raise CheckpointError(
            f"{path}: the weights do not fit the network its metadata describes; {_FORGED}"
        ) from None
    return net, meta


def load_supernet(path: str | Path) -> tuple[Supernet, dict]:
    """The supernet stored in a checkpoint, and the checkpoint's metadata."""
    return _load_net(
        path, "supernet", lambda space, proxy, meta: Supernet(space, proxy, meta["num_classes"])
    )


def load_child(path: str | Path) -> tuple[ChildNet, dict]:
    """The stand-alone network stored in a ``train_arch`` checkpoint, and its metadata."""
    return _load_net(
        path,
        "child",
        lambda space, proxy, meta: ChildNet(space, meta["arch"], proxy, meta["num_classes"]),
    )

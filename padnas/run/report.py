"""What a search run shows a person: the text summary and three plots (matplotlib, Agg).

- ``pareto.png``: every architecture each CES evaluated (latency vs the one-shot score it ranked
  by: accuracy or log-likelihood), ranks < 10 highlighted, the Pareto front drawn, the window
  shaded, the final models labelled, with error bars of one standard deviation of seed noise and
  the ceiling's tau when it was measured, and each final model's measured whole-network latency
  beside its prediction when it was measured;
- ``op_heatmap.png``: per stage, the probability of each op in each layer among the archs of rank
  < 10 (the paper's Fig. 3); ops a layer no longer has are hatched grey;
- ``space_size.png``: the number of architectures in each stage's space (log scale).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from padnas.core import atomic_write_bytes
from padnas.run.rundir import PLATFORM, PLOTS, LoadedRun, RunDir
from padnas.run.verify import verification_lines
from padnas.search.ceiling import Step, describe
from padnas.search.ces import SearchResult
from padnas.search.prune import MAX_RANK, OpDistribution
from padnas.space import SearchSpace

#: the held-out images the summary suggests when steps are lost in the noise of fewer (the quick
#: preset's size): where two seeds' supernets order random architectures with tau 0.52 by
#: log-likelihood (0.45 at 2,000; 0.54 at 20,000: beyond it the seed's noise is left;
#: docs/reproduction.md, "How many images")
MORE_IMAGES = 5000


def _fmt_size(size: str | int) -> str:
    n = int(size)
    return f"{n:.3g}" if n >= 1000 else str(n)


def _eval_processes(stages: list[dict]) -> str:
    """'; one-shot evaluation in N processes' where a search shared its evaluations out."""
    most = max((st.get("eval_processes") or 1 for st in stages), default=1)
    return f"; one-shot evaluation in {most} processes" if most > 1 else ""


def render_summary(summary: dict) -> str:
    cfg = summary["config"]
    lines = [
        f"{summary['method']} on the {cfg['space']} space, {cfg['stages']} stages, "
        f"data {cfg['data']}, preset {cfg['preset']['name']}, seed {cfg['seed']}"
        f"{', deterministic mode' if cfg.get('deterministic') else ''}",
        f"latency: {cfg['lut']['device']} {cfg['lut']['label']} LUT "
        f"(sources: {', '.join(cfg['lut']['sources'])}"
        f"{', calibrated' if cfg['lut']['calibrated'] else ''}); "
        f"window {cfg['latency_window_ms'][0]:g}..{cfg['latency_window_ms'][1]:g} ms "
        f"({cfg['window_rule']})",
        f"CES: population {cfg['ces']['pop_size']}, {cfg['ces']['generations']} generations; "
        f"pruning P_th {cfg['p_th']:g} over archs of rank < {cfg['max_rank']}"
        f"{_eval_processes(summary['stages'])}",
        "",
        "stage  space size  epochs  lr      evaluated  front  pruned ops  seconds",
    ]
    for st in summary["stages"]:
        secs = (st.get("train_seconds") or 0) + (st.get("search_seconds") or 0)
        lines.append(
            f"{st['stage']:<6} {_fmt_size(st['space_size']) if 'space_size' in st else '-':<11} "
            f"{st.get('epochs', '-')!s:<7} {st.get('lr', '-')!s:<7} "
            f"{st.get('evaluations', '-')!s:<10} {st.get('front', '-')!s:<6} "
            f"{st.get('pruned_ops', '-')!s:<11} {secs:.0f}"
        )
        for note in st.get("notes") or []:
            lines.append(f"       note: {note}")
    by_ll = _rank_by(summary) == "log_likelihood"
    lines += [
        "",
        "model  latency ms  source         measured ms  pred/meas  one-shot acc  "
        + ("log-lik   " if by_ll else "")
        + "MACs      params   arch",
    ]
    for m in summary["final"]:
        src = m["latency_source"] + (" (cal.)" if m.get("latency_calibrated") else "")
        macs, params = f"{m['macs'] / 1e6:.1f}M", f"{m['params'] / 1e6:.2f}M"
        measured, ratio = "-", "-"
        if "measured_ms" in m:
            measured = f"{m['measured_ms']:.2f}" + ("" if m["measured_in_window"] else " (!)")
            ratio = f"{m['predicted_over_measured']:.3f}"
        lines.append(
            f"{m['label']:<6} {m['latency_ms']:<11.2f} {src:<14} {measured:<12} {ratio:<10} "
            f"{m['one_shot_accuracy']:<13.4f} "
            + (f"{m['one_shot_log_likelihood']:<9.4f} " if by_ll else "")
            + f"{macs:<9} {params:<8} {m['arch']}"
        )
    if not summary["final"]:
        lines.append("(no architecture found)")
    for note in summary.get("final_notes", []):
        lines.append(f"note: {note}")
    if summary["final"] and "verification" in summary:  # runs from before it have no block
        lines += verification_lines(summary["verification"])
    lines += ["", *render_ceiling(summary.get("noise_ceiling"))]
    return "\n".join(lines) + "\n"


def _rank_by(summary: dict) -> str:
    """What the run's search ranked by (runs from before the option: accuracy)."""
    return summary["config"]["preset"].get("rank_by", "accuracy")


def _score_key(summary: dict) -> str:
    """The final models' key of the score the search ranked by."""
    if _rank_by(summary) == "log_likelihood":
        return "one_shot_log_likelihood"
    return "one_shot_accuracy"


def render_ceiling(block: dict | None) -> list[str]:
    """The summary's noise-ceiling lines: how far two supernets that differ only by their seed
    agree, and, step by step, whether the final models' one-shot score rises beyond that noise."""
    if block is None:
        return [
            "noise ceiling: not measured (--no-noise-ceiling): how far this ranking can be "
            "trusted is unknown"
        ]
    a, b = block["seeds"]
    images = block.get("eval_images")  # runs from before it do not say
    scored = ""
    if images:
        kind = "held-out" if block.get("eval_split") == "holdout" else "validation"
        scored = f", scored on {images} {kind} images"
    lines = [
        f"noise ceiling: two stage-{block['stage']} supernets, seeds {a} and {b} (nothing else "
        f"differs), on {block['archs']} archs of the first search spread along the window, "
        f"the same recalibration draw{scored}",
        f"  {describe(block, archs=False)}",
    ]
    few = block.get("eval_split") == "val" or (images or 0) < MORE_IMAGES
    if few and any(st["within_noise"] for st in block["steps"]):
        lines.append(
            f"  much of this noise is which {images} images were drawn (docs/reproduction.md, "
            f'"How many images"): --eval-images {MORE_IMAGES} scores on {MORE_IMAGES:,} '
            "held-out images instead"
        )
    cost = []
    if block.get("twin_train_seconds") is not None:
        beside = " beside the first" if block.get("twin_concurrent") else ""
        cost.append(f"second supernet {block['twin_train_seconds']:.0f} s{beside}")
    if block.get("eval_beside_finetune"):
        cost.append(
            f"{block['archs']} evaluations by helper processes beside the first finetune "
            f"({block['eval_seconds']:.0f} s of waiting here)"
        )
    elif block.get("eval_seconds") is not None:
        cost.append(f"{block['archs']} evaluations {block['eval_seconds']:.0f} s")
    if cost:
        lines.append(f"  cost: {', '.join(cost)}")
    for st in block["steps"]:
        lines.append(f"  {Step.from_json(st).sentence()}")
    return lines


def show(path: str | Path) -> str:
    """The summary of a finished run, or the progress of an unfinished one."""
    loaded = LoadedRun(path)
    if loaded.finished:
        return loaded.summary_text()
    cfg, done = loaded.config, loaded.done
    lines = [
        f"{cfg['method']} on the {cfg['space']} space, {cfg['stages']} stages (unfinished; "
        "continue it with padnas search ... --resume)",
        f"finished steps: {', '.join(done) or 'none'}",
    ]
    for k, n in _ces_in_progress(loaded):
        lines.append(f"stage {k}: CES in progress, {n} architectures evaluated")
    return "\n".join(lines) + "\n"


def show_document(path: str | Path) -> dict:
    """What ``padnas show --json`` prints: ``summary.json`` of a finished run with
    ``finished: true``; for an unfinished one, its finished steps and the CES under way (the
    same facts :func:`show` writes as text); both with the ``platform`` of ``config.json``."""
    loaded = LoadedRun(path)
    head = {"run_dir": str(path), "finished": loaded.finished}
    platform = {PLATFORM: loaded.config.get(PLATFORM)}  # null for runs from before the record
    if loaded.finished:
        return {**head, **loaded.summary(), **platform}
    cfg = loaded.config
    return {
        **head,
        "method": cfg["method"],
        "space": cfg["space"],
        "stages": cfg["stages"],
        "deterministic": bool(cfg.get("deterministic", False)),
        "done": list(loaded.done),
        "ces_in_progress": [{"stage": k, "evaluated": n} for k, n in _ces_in_progress(loaded)],
        **platform,
    }


def _ces_in_progress(loaded: LoadedRun) -> list[tuple[int, int]]:
    """(stage, architectures evaluated so far) of each CES that has started but not finished."""
    out = []
    for k in range(2, loaded.config["stages"] + 1):
        n = len(loaded.run.read_records(RunDir.ces_log(k)))
        if n and f"search-{k}" not in loaded.done:
            out.append((k, n))
    return out


# ---- plots --------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(run: RunDir, name: str, fig) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(run.file(name), buf.getvalue())


def write_plots(
    run: RunDir,
    summary: dict,
    results: Mapping[int, SearchResult],
    distributions: Mapping[int, OpDistribution],
    spaces: Mapping[int, SearchSpace],
) -> None:
    plt = _pyplot()
    try:
        _pareto(plt, run, summary, results)
        _heatmap(plt, run, distributions)
        _sizes(plt, run, spaces, summary["config"]["stages"])
    finally:
        plt.close("all")


def _pareto(plt, run: RunDir, summary: dict, results: Mapping[int, SearchResult]) -> None:
    stages = sorted(results)
    fig, axes = plt.subplots(
        1, len(stages), figsize=(4.2 * len(stages), 3.6), squeeze=False, sharey=True
    )
    last = stages[-1]
    for ax, k in zip(axes[0], stages, strict=True):
        res = results[k]
        F = res.objectives()  # -score (the one the search ranked by), latency
        ranks = np.array([r.rank for r in res.records])
        lat, score = F[:, 1], -F[:, 0]
        ax.axvspan(res.window.lo, res.window.hi, color="tab:green", alpha=0.07)
        ax.scatter(lat, score, s=6, c="0.75", label="evaluated")
        near = ranks < MAX_RANK
        ax.scatter(lat[near], score[near], s=8, c="tab:blue", label=f"rank < {MAX_RANK}")
        front = np.flatnonzero(ranks == 1)
        front = front[np.argsort(lat[front])]
        ax.plot(lat[front], score[front], "-o", c="tab:red", ms=3, lw=1, label="Pareto front")
        if k == last:
            _noise_marks(ax, summary)
            _measured_marks(ax, summary)
            for m in summary["final"]:
                ax.annotate(
                    m["label"],
                    (m["latency_ms"], m[_score_key(summary)]),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=9,
                    weight="bold",
                )
        ax.set_title(f"stage {k} ({res.evaluations} archs)")
        ax.set_xlabel("latency (ms)")
    by_ll = _rank_by(summary) == "log_likelihood"
    axes[0][0].set_ylabel("one-shot log-likelihood (nats)" if by_ll else "one-shot accuracy")
    axes[0][0].legend(fontsize=7, loc="lower right")
    _save(run, PLOTS["pareto"], fig)


def _measured_marks(ax, summary: dict) -> None:
    """Each final model's measured whole-network latency beside its predicted one (hollow
    marker, joined by a dotted line); red when it falls outside the window."""
    measured = [m for m in summary["final"] if "measured_ms" in m]
    for i, m in enumerate(measured):
        colour = "tab:green" if m["measured_in_window"] else "tab:red"
        y = m[_score_key(summary)]
        ax.plot([m["latency_ms"], m["measured_ms"]], [y, y], ":", c=colour, lw=1)
        ax.scatter(
            [m["measured_ms"]],
            [y],
            s=40,
            facecolors="none",
            edgecolors=colour,
            label=f"measured whole ({summary['verification']['device']})" if i == 0 else None,
        )
    if measured:
        ax.legend(fontsize=7, loc="lower right")


def _noise_marks(ax, summary: dict) -> None:
    """Error bars of one standard deviation of seed noise on the final models' one-shot
    accuracy, and the ceiling's tau, when the run measured it."""
    block = summary.get("noise_ceiling")
    if block is None or not summary["final"]:
        return
    lat = [m["latency_ms"] for m in summary["final"]]
    score = [m[_score_key(summary)] for m in summary["final"]]
    by_ll = _rank_by(summary) == "log_likelihood"
    noise = block["log_likelihood_noise"] if by_ll else block["accuracy_noise"]
    ax.errorbar(
        lat,
        score,
        yerr=noise,
        fmt="none",
        ecolor="k",
        elinewidth=1,
        capsize=3,
        label="±1 std seed noise",
    )
    tau = "undefined" if block["tau"] is None else f"{block['tau']:+.2f}"
    ax.text(
        0.02,
        0.98,
        f"noise ceiling: tau {tau} over {block['archs']} archs\n"
        + (f"±{noise:.3f} nats per model" if by_ll else f"±{100 * noise:.1f} pts per model"),
        transform=ax.transAxes,
        va="top",
        fontsize=7,
    )


def _heatmap(plt, run: RunDir, distributions: Mapping[int, OpDistribution]) -> None:
    stages = sorted(distributions)
    if not stages:
        return
    mats = [distributions[k].matrix() for k in stages]
    cols = mats[0][1]
    fig, axes = plt.subplots(
        len(stages),
        1,
        figsize=(9, 1.2 + 0.3 * len(cols) * len(stages)),
        squeeze=False,
        layout="constrained",
    )
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    for ax, k, (mat, _) in zip(axes[:, 0], stages, mats, strict=True):
        img = ax.imshow(
            np.ma.masked_invalid(mat.T),
            aspect="auto",
            cmap=cmap,
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        gone = np.isnan(mat.T)
        yy, xx = np.nonzero(gone)
        ax.scatter(xx, yy, marker="x", s=8, c="0.6", linewidths=0.6)
        ax.set_yticks(range(len(cols)), cols, fontsize=7)
        ax.set_xticks(range(mat.shape[0]), [str(j + 1) for j in range(mat.shape[0])], fontsize=7)
        ax.set_title(
            f"stage {k}: op probability per layer (archs of rank < {MAX_RANK}, "
            f"n = {distributions[k].count}); x = removed",
            fontsize=9,
        )
        ax.set_xlabel("layer")
        fig.colorbar(img, ax=ax, fraction=0.025)
    _save(run, PLOTS["op_heatmap"], fig)


def _sizes(plt, run: RunDir, spaces: Mapping[int, SearchSpace], stages: int) -> None:
    ks = list(range(1, stages + 1))
    # the last stage searches the space the one before it produced
    sizes = [float(spaces[min(k, stages - 1)].size) for k in ks]
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.bar([str(k) for k in ks], sizes, color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel("stage")
    ax.set_ylabel("architectures in the space")
    ax.set_title("search space size per stage")
    for i, v in enumerate(sizes):
        ax.annotate(f"{v:.2g}", (i, v), ha="center", va="bottom", fontsize=8)
    _save(run, PLOTS["space_size"], fig)

"""The report's figures, drawn with matplotlib's Agg canvas (no display, no global pyplot
state) and returned as PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

from ..space.changes import PathStep
from .comparison import Comparison, TrajectoryPoint
from .importance import Row

WIDTH = 7.5
COLORS = {"ok": "#2b7bba", "diverged": "#e08214", "crashed": "#b2182b", "timeout": "#7b3294",
          "memout": "#542788", "pruned": "#8c8c8c"}


def _figure(height: float = 3.6):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, height), dpi=110, layout="constrained")
    return fig


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def importance_bars(rows: Sequence[Row], title: str, top: int = 15) -> bytes:
    """Horizontal bars with error bars (std over trees); flagged rows hatched."""
    rows = list(rows)[:top][::-1]
    fig = _figure(max(2.2, 0.32 * len(rows) + 1.2))
    ax = fig.add_subplot()
    labels = [r.parameter if r.subspace in ("all trials",) or r.subspace.startswith("around")
              else f"{r.parameter}  [{r.subspace}]" for r in rows]
    y = np.arange(len(rows))
    bars = ax.barh(y, [r.importance for r in rows], xerr=[r.std for r in rows],
                   color="#2b7bba", ecolor="#444444", capsize=2)
    for bar, r in zip(bars, rows, strict=True):
        if r.flagged:
            bar.set_hatch("//")
            bar.set_alpha(0.6)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("fraction of variance explained (mean ± std over trees)")
    ax.set_xlim(left=0)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def ablation_path(path: Sequence[PathStep], title: str, ylabel: str) -> bytes:
    """Cost after each step of the path, with the spread over instances."""
    fig = _figure(4.6)
    ax = fig.add_subplot()
    x = np.arange(len(path))
    cost = np.array([s.cost for s in path])
    std = np.array([s.cost_std for s in path])
    ax.plot(x, cost, "o-", color="#2b7bba")
    ax.fill_between(x, cost - std, cost + std, color="#2b7bba", alpha=0.2,
                    label="± std over instances")
    labels = ["source"] + [" + ".join(s.change.names)
                           + (f" (+{len(s.change.moved)})" if s.change.moved else "")
                           for s in path[1:] if s.change]
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def instance_scatter(comparison: Comparison) -> bytes:
    """Default (x) against incumbent (y) per instance; below the diagonal: incumbent better."""
    fig = _figure(4.2)
    ax = fig.add_subplot()
    for split, marker in (("train", "o"), ("test", "s")):
        rows = [r for r in comparison.rows if r.split == split]
        if rows:
            ax.scatter([r.default for r in rows], [r.incumbent for r in rows], marker=marker,
                       label=f"{split} instances", alpha=0.8)
    values = [v for r in comparison.rows for v in (r.default, r.incumbent) if np.isfinite(v)]
    if values:
        lo, hi = min(values), max(values)
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8,
                label="equal")
    ax.set_xlabel(f"default: {comparison.metric}")
    ax.set_ylabel(f"incumbent: {comparison.metric}")
    ax.set_title("per instance: default vs incumbent (below the line: incumbent better)",
                 fontsize=10)
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def trajectory(points: Sequence[TrajectoryPoint], ylabel: str) -> bytes:
    """Incumbent cost over wall time and over trials."""
    fig = _figure(3.4)
    ax_t, ax_n = fig.subplots(1, 2, sharey=True)
    t = [p.wall_time for p in points]
    n = [p.trial for p in points]
    c = [p.incumbent_cost for p in points]
    ax_t.step(t, c, where="post", color="#2b7bba")
    ax_t.set_xlabel("wall time since the first trial (s)")
    ax_t.set_ylabel(f"incumbent {ylabel}")
    ax_n.step(n, c, where="post", color="#2b7bba")
    ax_n.set_xlabel("finished tuning trials")
    for ax in (ax_t, ax_n):
        ax.grid(alpha=0.3)
    fig.suptitle("incumbent trajectory", fontsize=10)
    return _png(fig)


def ecdf(costs: dict[str, np.ndarray], xlabel: str) -> bytes:
    """Empirical CDF of the tuning trials' costs: all of them, and the ``ok`` ones alone
    (failed trials sit at their crash cost)."""
    fig = _figure(3.4)
    ax = fig.add_subplot()
    every = np.sort(np.concatenate(list(costs.values()))) if costs else np.zeros(0)
    n = len(every)
    if n:
        ax.step(every, np.arange(1, n + 1) / n, where="post", color="black",
                label=f"all trials ({n})")
    ok = costs.get("ok", np.zeros(0))
    failed = ", ".join(f"{s} {len(v)}" for s, v in sorted(costs.items()) if s != "ok")
    if len(ok) and failed:
        ax.step(ok, np.arange(1, len(ok) + 1) / n, where="post", color=COLORS["ok"],
                label=f"ok ({len(ok)}); the rest ({failed}) at their crash cost")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of trials with cost ≤ x")
    ax.set_title("cost distribution of the tuning trials (ECDF)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return _png(fig)


def statuses(times: np.ndarray, counts: dict[str, np.ndarray]) -> bytes:
    """Cumulative number of trials of each status over wall time (stacked)."""
    fig = _figure(3.2)
    ax = fig.add_subplot()
    names = sorted(counts, key=lambda s: list(COLORS).index(s) if s in COLORS else 99)
    ax.stackplot(times, [counts[s] for s in names], labels=names,
                 colors=[COLORS.get(s, "#999999") for s in names], step="post")
    ax.set_xlabel("wall time since the first trial (s)")
    ax.set_ylabel("finished tuning trials")
    ax.set_title("trial statuses over time", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def pareto(points: Sequence[tuple[str, list[float]]], front: Sequence[tuple[str, list[float]]],
           names: Sequence[str]) -> bytes:
    """Every configuration's mean objectives (first two) and the non-dominated front."""
    fig = _figure(4.0)
    ax = fig.add_subplot()
    if points:
        xy = np.array([c[:2] for _, c in points])
        ax.scatter(xy[:, 0], xy[:, 1], s=10, color="#bbbbbb", label="configurations")
    if front:
        f = np.array(sorted(c[:2] for _, c in front))
        ax.step(f[:, 0], f[:, 1], where="post", color="#b2182b")
        ax.scatter(f[:, 0], f[:, 1], color="#b2182b", label=f"Pareto front ({len(f)})")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title("objectives: mean over the training instances", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def curves(series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], xlabel: str,
           ylabel: str, title: str) -> bytes:
    """Mean lines with a ±1 std band, one per label: ``label -> (x, mean, std)``."""
    fig = _figure(3.8)
    ax = fig.subplots()
    for k, (label, (x, mean, std)) in enumerate(series.items()):
        color = f"C{k % 10}"
        ax.plot(x, mean, color=color, label=label, lw=1.4)
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15, lw=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def paired_bars(labels: Sequence[str], a: Sequence[float], a_err: Sequence[float],
                b: Sequence[float], b_err: Sequence[float], names: tuple[str, str],
                ylabel: str, title: str) -> bytes:
    """Two bars per label (e.g. default and tuned) with error bars (spread over seeds)."""
    fig = _figure(3.6)
    ax = fig.subplots()
    x = np.arange(len(labels))
    ax.bar(x - 0.2, a, 0.4, yerr=a_err, label=names[0], color="#bbbbbb", capsize=3)
    ax.bar(x + 0.2, b, 0.4, yerr=b_err, label=names[1], color="#2b7bba", capsize=3)
    ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def horizontal_bars(labels: Sequence[str], values: Sequence[float], errors: Sequence[float],
                    xlabel: str, title: str) -> bytes:
    """One horizontal bar per label, largest on top."""
    fig = _figure(0.5 + 0.32 * max(3, len(labels)))
    ax = fig.subplots()
    y = np.arange(len(labels))[::-1]
    ax.barh(y, values, xerr=errors, color="#2b7bba", capsize=2)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")
    fig.suptitle(title, fontsize=10)
    return _png(fig)

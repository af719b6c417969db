"""Functional ANOVA over the trees of a random forest (Hutter, Hoos & Leyton-Brown 2014).

A regression tree is piecewise constant on boxes.  Integrating it against the product
measure of the configuration coordinates (uniform on [0, 1] for numeric parameters, on
their log scale where they have one; uniform over the choices of categorical ones) and
averaging over the training instances gives, for every set U of parameters, the marginal
prediction f_U, constant on the grid the tree's thresholds cut on U.  The variance of f_U
minus the variances of its lower-order parts is the component V_U; V_U divided by the
total variance of the instance-averaged prediction is U's importance.  Each tree is
decomposed exactly (no sampling); numbers are reported over trees and forest seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .encoding import Dim
from .forest import Forests, Leaves, leaves


class TreeANOVA:
    """The decomposition of one tree's instance-averaged prediction.

    The first ``len(dims)`` columns of the tree are configuration dimensions; the rest
    are instance columns, integrated over the training ``instances`` (their rows)."""

    def __init__(self, tree_leaves: Leaves, dims: Sequence[Dim], instances: np.ndarray
                 ) -> None:
        p = len(dims)
        lo, hi, value = tree_leaves.lo, tree_leaves.hi, tree_leaves.value
        self.dims, self.lo, self.hi, self.cuts = dims, lo, hi, tree_leaves.cuts
        if lo.shape[1] > p:  # fraction of the training instances inside each leaf's box
            inside = np.all((instances[None, :, :] > lo[:, None, p:])
                            & (instances[None, :, :] <= hi[:, None, p:]), axis=2)
            self.inst_mass = inside.mean(axis=1)
        else:
            self.inst_mass = np.ones(len(value))
        self.a = value * self.inst_mass  # leaf value integrated over the instances
        self.mass = np.column_stack([d.mass(lo[:, j], hi[:, j]) for j, d in enumerate(dims)])
        self.mean = float(np.sum(self.a * np.prod(self.mass, axis=1)))
        self._cells: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def total(self) -> float:
        """Variance of the instance-averaged prediction over the configuration space."""
        split_on_instances = bool(np.any(self.inst_mass < 1.0))
        p = len(self.dims)
        m2 = _second_moment(self.lo[:, :p], self.hi[:, :p], self.a, self.mass, self.dims,
                            split_on_instances)
        return max(0.0, m2 - self.mean ** 2)

    def cells(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Which leaves cover each cell of dimension ``j`` (leaves x cells) and the cells'
        measures."""
        if j not in self._cells:
            mids, measure = _cells(self.dims[j], self.cuts[j])
            cover = (self.lo[:, j, None] < mids[None, :]) & (mids[None, :] <= self.hi[:, j, None])
            self._cells[j] = (cover.astype(float), measure)
        return self._cells[j]

    def main(self, j: int) -> float:
        """V_{j}: variance of the marginal prediction over parameter ``j`` alone."""
        cover, measure = self.cells(j)
        f = (self.a * _prod_without(self.mass, (j,))) @ cover
        return max(0.0, float(measure @ (f * f)) - self.mean ** 2)

    def pair(self, i: int, j: int, main_i: float, main_j: float) -> float:
        """V_{ij}: the variance of the (i, j) marginal not explained by either alone."""
        (ci, mi), (cj, mj) = self.cells(i), self.cells(j)
        w = self.a * _prod_without(self.mass, (i, j))
        f = (ci * w[:, None]).T @ cj
        v = float(mi @ (f * f) @ mj) - self.mean ** 2 - main_i - main_j
        return max(0.0, v)


def _cells(dim: Dim, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Midpoints and measures of the cells the tree's thresholds cut ``dim`` into."""
    if dim.discrete:
        points = np.arange(dim.size, dtype=float)
        return points, np.full(dim.size, 1.0 / dim.size)
    inner = cuts[(cuts > 0.0) & (cuts < 1.0)]
    edges = np.concatenate([[0.0], inner, [1.0]])
    return (edges[:-1] + edges[1:]) / 2.0, np.diff(edges)


def _prod_without(mass: np.ndarray, skip: tuple[int, ...]) -> np.ndarray:
    keep = [j for j in range(mass.shape[1]) if j not in skip]
    return np.prod(mass[:, keep], axis=1) if keep else np.ones(len(mass))


def _second_moment(lo: np.ndarray, hi: np.ndarray, a: np.ndarray, mass: np.ndarray,
                   dims: Sequence[Dim], split_on_instances: bool) -> float:
    """E[f̄²] over the configuration space, f̄ the instance-averaged prediction.

    Without splits on instance columns the leaves' configuration boxes partition the
    space and E[f̄²] = Σ a_l² μ(B_l).  Otherwise boxes overlap across instances and the
    overlap of every pair of leaves is integrated (O(leaves²) per split dimension)."""
    if not split_on_instances:
        return float(np.sum(a * a * np.prod(mass, axis=1)))
    n = len(a)
    overlap = np.ones((n, n))
    both_lo, both_hi = np.empty((n, n)), np.empty((n, n))
    for j, dim in enumerate(dims):
        if np.all(np.isinf(lo[:, j])) and np.all(np.isinf(hi[:, j])):
            continue  # never split: every pair overlaps fully here
        f_lo, f_hi = dim.measure_coords(lo[:, j]), dim.measure_coords(hi[:, j])
        np.maximum.outer(f_lo, f_lo, out=both_lo)
        np.minimum.outer(f_hi, f_hi, out=both_hi)
        np.subtract(both_hi, both_lo, out=both_hi)
        np.maximum(both_hi, 0.0, out=both_hi)
        overlap *= both_hi
    return float(a @ overlap @ a)


@dataclass
class Effect:
    """Importance of one parameter or pair: mean and spread of the per-tree fractions."""

    names: tuple[str, ...]
    importance: float
    std: float  # over all trees of all forests
    std_seeds: float  # of the per-forest means
    per_tree: np.ndarray


def fanova(forests: Forests, dims: Sequence[Dim], top_pairs: int = 6
           ) -> tuple[list[Effect], list[Effect]]:
    """Main effects of every dimension, and pairwise interactions among the ``top_pairs``
    strongest main effects, each as a fraction of the variance, tree by tree."""
    trees = forests.trees
    n_features = forests.n_config + forests.instances.shape[1]
    seeds = forests.tree_seed
    totals = np.zeros(len(trees))
    main = np.zeros((len(trees), len(dims)))
    boxes = [leaves(tree, n_features) for tree in trees]
    for t, tree_leaves in enumerate(boxes):
        anova = TreeANOVA(tree_leaves, dims, forests.instances)
        totals[t] = anova.total()
        main[t] = [anova.main(j) for j in range(len(dims))]
    valid = totals > 1e-12
    fractions = np.divide(main, totals[:, None], out=np.zeros_like(main),
                          where=valid[:, None])
    mains = [_effect((dim.name,), fractions[:, j], valid, seeds) for j, dim in enumerate(dims)]
    order = np.argsort([-e.importance for e in mains], kind="stable")[:top_pairs]
    wanted = [(int(min(i, j)), int(max(i, j))) for k, i in enumerate(order) for j in order[k + 1:]]
    if not wanted:
        return mains, []
    pair_fracs = np.zeros((len(trees), len(wanted)))
    for t, tree_leaves in enumerate(boxes):
        if not valid[t]:
            continue
        anova = TreeANOVA(tree_leaves, dims, forests.instances)
        pair_fracs[t] = [anova.pair(i, j, main[t, i], main[t, j]) / totals[t]
                         for i, j in wanted]
    pairs = [_effect((dims[i].name, dims[j].name), pair_fracs[:, k], valid, seeds)
             for k, (i, j) in enumerate(wanted)]
    pairs.sort(key=lambda e: -e.importance)
    return mains, pairs


def _effect(names: tuple[str, ...], per_tree: np.ndarray, valid: np.ndarray,
            seeds: np.ndarray) -> Effect:
    vals = per_tree[valid]
    if len(vals) == 0:
        return Effect(names, 0.0, 0.0, 0.0, vals)
    by_seed = [per_tree[valid & (seeds == s)].mean() for s in np.unique(seeds[valid])]
    return Effect(names, float(vals.mean()), float(vals.std()),
                  float(np.std(by_seed)) if len(by_seed) > 1 else 0.0, vals)

"""Random forests over (configuration, instance) points and the boxes of their leaves.

The inputs of a forest are the encoded configuration (see :mod:`.encoding`) followed by
the instance columns: the instance's index among the training instances and its stored
features.  Predictions for a configuration are averaged over the training instances, so
every number the analysis reports is about the instance set, not one instance.
Several forests with different seeds are fitted, so the spread over trees and over seeds
can be reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Progress = Callable[[int, int], None]


@dataclass
class Forests:
    """Fitted forests (one per seed) and the training instances' columns."""

    forests: list  # sklearn RandomForestRegressor
    n_config: int  # leading configuration columns
    instances: np.ndarray  # (n_instances, n_instance_columns)

    @property
    def trees(self) -> list:
        return [t for f in self.forests for t in f.estimators_]

    @property
    def tree_seed(self) -> np.ndarray:
        """Index of the forest each tree of :attr:`trees` belongs to."""
        return np.repeat(np.arange(len(self.forests)), [len(f.estimators_) for f in self.forests])

    def predict_trees(self, configs: np.ndarray) -> np.ndarray:
        """Per tree, the prediction for each configuration averaged over the training
        instances: shape (n_trees, n_configs)."""
        return self.predict_instances(configs).mean(axis=2)

    def predict_instances(self, configs: np.ndarray) -> np.ndarray:
        """Predictions of every tree for every (configuration, training instance):
        shape (n_trees, n_configs, n_instances)."""
        configs = np.atleast_2d(configs)
        n_c, n_i = len(configs), len(self.instances)
        rows = np.hstack([np.repeat(configs, n_i, axis=0), np.tile(self.instances, (n_c, 1))])
        out = np.stack([tree.predict(rows) for tree in self.trees])
        return out.reshape(len(out), n_c, n_i)


def fit(x_config: np.ndarray, x_instance: np.ndarray, y: np.ndarray, instances: np.ndarray,
        n_forests: int = 3, n_trees: int = 32, seed: int = 0,
        progress: Progress | None = None) -> Forests:
    """Fit ``n_forests`` forests of ``n_trees`` trees on [configuration, instance] rows."""
    from sklearn.ensemble import RandomForestRegressor

    x = np.hstack([x_config, x_instance])
    forests = []
    for k in range(n_forests):
        forest = RandomForestRegressor(n_estimators=n_trees, min_samples_leaf=2,
                                       max_features=0.7, bootstrap=True,
                                       random_state=seed + k, n_jobs=1)
        forest.fit(x, y)
        forests.append(forest)
        if progress is not None:
            progress(k + 1, n_forests)
    return Forests(forests, x_config.shape[1], np.asarray(instances, dtype=float))


@dataclass
class Leaves:
    """The leaves of one tree as boxes: leaf ``l`` covers ``lo[l, d] < x_d <= hi[l, d]``
    and predicts ``value[l]``; ``cuts[d]`` are the thresholds the tree uses on ``d``."""

    lo: np.ndarray
    hi: np.ndarray
    value: np.ndarray
    cuts: list[np.ndarray]


def leaves(tree, n_features: int) -> Leaves:
    """The leaves' boxes of a fitted sklearn tree (computed level by level)."""
    t = tree.tree_
    n = t.node_count
    left, right, feature, threshold = t.children_left, t.children_right, t.feature, t.threshold
    lo = np.full((n, n_features), -np.inf)
    hi = np.full((n, n_features), np.inf)
    level = np.array([0])
    while len(level):
        inner = level[left[level] != -1]
        if not len(inner):
            break
        ls, rs, fs, ts = left[inner], right[inner], feature[inner], threshold[inner]
        lo[ls], hi[ls] = lo[inner], hi[inner]
        lo[rs], hi[rs] = lo[inner], hi[inner]
        hi[ls, fs] = np.minimum(hi[ls, fs], ts)
        lo[rs, fs] = np.maximum(lo[rs, fs], ts)
        level = np.concatenate([ls, rs])
    is_leaf = left == -1
    split = ~is_leaf
    cuts = [np.unique(threshold[split & (feature == d)]) for d in range(n_features)]
    return Leaves(lo[is_leaf], hi[is_leaf], t.value[is_leaf].reshape(-1), cuts)


def instance_columns(instances: Sequence[str], features: dict[str, dict[str, float]]
                     ) -> tuple[list[str], np.ndarray]:
    """Column names and rows describing each instance: its index, then every feature
    the store holds for all of them (constant features are left out)."""
    names = ["instance"]
    rows = [[float(i)] for i in range(len(instances))]
    shared = [f for f in (features.get(instances[0], {}) if instances else {})
              if all(f in features.get(i, {}) for i in instances)]
    for f in shared:
        col = [float(features[i][f]) for i in instances]
        if len(set(col)) > 1:
            names.append(f"instance:{f}")
            for row, v in zip(rows, col, strict=True):
                row.append(v)
    return names, np.array(rows, dtype=float).reshape(len(instances), len(names))

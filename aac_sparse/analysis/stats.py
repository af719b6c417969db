"""Paired comparisons of two configurations across instances (and seeds): the tests and
effect sizes a reviewer asks for, with their limits stated rather than hidden."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

EXACT_PERMUTATION_MAX_N = 16
PERMUTATION_SAMPLES = 20_000


@dataclass
class Paired:
    """``b - a`` over paired observations (negative: ``b`` is better when minimising)."""

    n: int
    mean_delta: float
    median_delta: float
    wilcoxon_p: float  # two-sided Wilcoxon signed-rank; NaN when every difference is 0
    permutation_p: float  # two-sided paired (sign-flip) permutation test of the mean
    permutation_exact: bool
    cohens_dz: float  # mean difference / std of the differences
    rank_biserial: float  # matched-pairs rank-biserial correlation, in [-1, 1]

    @property
    def min_wilcoxon_p(self) -> float:
        """The smallest two-sided p-value n pairs can give (exact test): 2 / 2**n."""
        return 2.0 / 2 ** self.n if self.n else math.nan


def paired(a: np.ndarray | list[float], b: np.ndarray | list[float], seed: int = 0) -> Paired:
    """Tests of ``b`` against ``a`` (same length, paired by position; NaN pairs dropped)."""
    from scipy import stats

    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a_) & np.isfinite(b_)
    d = b_[keep] - a_[keep]
    n = len(d)
    if n == 0:
        nan = math.nan
        return Paired(0, nan, nan, nan, nan, True, nan, nan)
    nonzero = d[d != 0]
    if len(nonzero):
        w = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided",
                           method="exact" if len(nonzero) <= 25 else "auto")
        wilcoxon_p = float(w.pvalue)
        ranks = stats.rankdata(np.abs(nonzero))
        rank_biserial = float((ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum())
                              / ranks.sum())
    else:
        wilcoxon_p, rank_biserial = math.nan, 0.0
    perm_p, exact = _sign_flip(d, seed)
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    dz = float(d.mean() / sd) if sd and math.isfinite(sd) and sd > 0 else math.nan
    return Paired(n, float(d.mean()), float(np.median(d)), wilcoxon_p, perm_p, exact, dz,
                  rank_biserial)


def _sign_flip(d: np.ndarray, seed: int) -> tuple[float, bool]:
    observed = abs(d.mean())
    n = len(d)
    if n <= EXACT_PERMUTATION_MAX_N:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        exact = True
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice((1.0, -1.0), size=(PERMUTATION_SAMPLES, n))
        exact = False
    means = np.abs(signs @ d) / n
    hits = int(np.sum(means >= observed - 1e-12))
    return (hits / len(signs) if exact else (hits + 1) / (len(signs) + 1)), exact

"""Statistics of replications: mean and Student-t interval, replications needed."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


def mean_ci(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a sample and its two-sided Student-t confidence interval.

    Parameters
    ----------
    values : iterable of float
        One value per replication (NaNs are ignored).
    level : float, default 0.95

    Returns
    -------
    mean, low, high : float
        ``low``/``high`` are NaN with fewer than two values; with zero
        spread they equal the mean.
    """
    from scipy import stats

    x = np.asarray([v for v in values if not (v is None or math.isnan(v))], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if len(x) < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - half, m + half


def replications_needed(values: Sequence[float], halfwidth: float, level: float = 0.95) -> int:
    """Replications for a `level` interval of at most ±`halfwidth`, from the
    spread of `values` (at least one more than now while it is wider)."""
    from scipy import stats

    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    n = len(x)
    if n < 2:
        return 2
    s = float(x.std(ddof=1))
    if s == 0:
        return n
    need = n
    while need < 10_000:
        t = float(stats.t.ppf(0.5 + level / 2, need - 1))
        if t * s / math.sqrt(need) <= halfwidth:
            break
        need += 1
    return max(need, n)



def conclusive(low: float, high: float) -> bool:
    """An interval is conclusive when it excludes zero (the sign of the effect is known)."""
    return bool(low > 0 or high < 0)


__all__ = ["conclusive", "mean_ci", "replications_needed"]

"""Simultaneous perturbation stochastic approximation (SPSA), the baseline optimizer.

Spall's algorithm on the scaled, non-negative variables ``θ = x / s``:

* gains ``a_k = a / (k + 1 + A)^α`` and ``c_k = c / (k + 1)^γ`` with the
  standard exponents α = 0.602, γ = 0.101 and ``A`` = 10 % of the iterations
  the budget allows;
* each iteration draws a Bernoulli ±1 vector Δ, evaluates ``θ ± c_k Δ``
  (projected onto the bounds, by default θ >= 0) and estimates the gradient ``ĝ = (f+ - f-) /
  (2 c_k) · Δ`` (1/Δ = Δ for ±1 entries);
* ``a`` is set after the first gradient estimate so that the first step moves
  θ by ``first_step`` on average (Spall's semi-automatic rule), then
  ``θ <- θ - a_k ĝ``, each component of the step at most ``max_step``
  (Spall's blocking of large steps), projected onto the bounds.

Why the step is bounded: the gain comes from one noisy difference ``f+ - f-``.
When that difference happens to be small, every later step is as many times
too large. Found on the bench corridor from a uniform prior (seed 5), where the
first difference was 0.004 and the fifth iteration's points held more than ten
times the demand (39,000 then 51,000 vehicles waiting to enter, each
simulation 140 s instead of 1), and on the large SODO event from half the true
demand (seed 4): 57,000 vehicles held, simulations of 175 s instead of 5.

Every evaluation counts one against the budget (the start point included);
the result is the best point evaluated. The perturbation of iteration ``k``
comes from ``numpy.random.default_rng([seed, k])``, so a run is a pure
function of its inputs and can be replayed (that is how
:func:`egress.calibration.driver.calibrate` resumes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SPSASettings:
    """Tuning of :func:`spsa` (defaults from Spall's guidelines).

    Attributes
    ----------
    c : float
        Perturbation size of the first iteration, in scaled units (0.1 = 10 %).
    first_step : float
        Mean absolute change of θ intended for the first step.
    max_step : float
        Largest change of one component of θ in one step (0.5: half the
        variable's scale).
    alpha, gamma : float
        Gain exponents.
    a : float, optional
        Fixed step gain (otherwise set from the first gradient estimate).
    """

    c: float = 0.1
    first_step: float = 0.1
    max_step: float = 0.5
    alpha: float = 0.602
    gamma: float = 0.101
    a: float | None = None


@dataclass
class SPSAResult:
    """Outcome of :func:`spsa`: best point and objective, and every evaluation."""

    x: np.ndarray
    f: float
    evaluations: int
    history: list[dict] = field(default_factory=list)


def spsa(f: Callable[[np.ndarray, str], float], x0: np.ndarray, budget: int, *,
         scale: np.ndarray | None = None, seed: int = 0,
         settings: SPSASettings = SPSASettings(), lower: np.ndarray | None = None,
         upper: np.ndarray | None = None) -> SPSAResult:
    """Minimise a noisy function with SPSA under a budget of evaluations.

    Parameters
    ----------
    f : callable
        ``f(x, tag) -> float``; `tag` names the evaluation (``"start"``,
        ``"k3+"``, ``"k3-"``) for caching.
    x0 : numpy.ndarray
        Start point (non-negative).
    budget : int
        Evaluations allowed, the start point included (>= 1).
    scale : numpy.ndarray, optional
        Per-variable scale ``s`` (default ``max(x0, 1)``).
    seed : int
    settings : SPSASettings
    lower, upper : numpy.ndarray, optional
        Bounds of x (default 0 and none); every point evaluated is projected
        onto them.

    Returns
    -------
    SPSAResult
    """
    x0 = np.asarray(x0, dtype=float)
    s = np.maximum(x0, 1.0) if scale is None else np.asarray(scale, dtype=float)
    lo = (np.zeros(x0.size) if lower is None else np.asarray(lower, dtype=float)) / s
    hi = (np.full(x0.size, np.inf) if upper is None else np.asarray(upper, dtype=float)) / s
    theta = x0 / s
    best_x, best_f = x0.copy(), f(x0, "start")
    history = [{"tag": "start", "f": best_f}]
    used = 1
    iterations = max((budget - 1) // 2, 1)
    big_a = 0.1 * iterations
    a = settings.a
    k = 0
    while used + 2 <= budget:
        rng = np.random.default_rng([seed, k])
        delta = rng.choice(np.array([-1.0, 1.0]), size=theta.size)
        ck = settings.c / (k + 1) ** settings.gamma
        xp = np.clip(theta + ck * delta, lo, hi) * s
        xm = np.clip(theta - ck * delta, lo, hi) * s
        fp = f(xp, f"k{k}+")
        fm = f(xm, f"k{k}-")
        used += 2
        for tag, xv, fv in ((f"k{k}+", xp, fp), (f"k{k}-", xm, fm)):
            history.append({"tag": tag, "f": fv})
            if fv < best_f:
                best_x, best_f = xv.copy(), fv
        ghat = (fp - fm) / (2.0 * ck) * delta
        if a is None:
            mean_g = float(np.mean(np.abs(ghat)))
            a = settings.first_step * (big_a + 1) ** settings.alpha / mean_g if mean_g > 0 else 0.0
        ak = a / (k + 1 + big_a) ** settings.alpha
        step = np.clip(ak * ghat, -settings.max_step, settings.max_step)
        theta = np.clip(theta - step, lo, hi)
        log.debug("spsa k=%d f+=%.4g f-=%.4g a_k=%.3g c_k=%.3g", k, fp, fm, ak, ck)
        k += 1
    return SPSAResult(best_x, float(best_f), used, history)


__all__ = ["SPSAResult", "SPSASettings", "spsa"]

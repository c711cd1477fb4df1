"""The calibration objective and a physics-informed metamodel of it.

Objective (:class:`Targets`)
----------------------------
For observed values ``o`` (speeds km/h, counts veh, travel times s) with
weights ``w = weight / sd²`` and simulated values ``y`` aggregated like them::

    J(x) = [Σ ρ(w r(y, o)²)  +  Σ_g (ln(T_g(x) / T_g(x0)) / σ)²] / N
           +  λ · mean(((x - x0) / s)²)

with ``ρ(z²) = z²`` except for counts (below). The residual ``r`` is ``y
- o`` for speeds and counts and ``ln(y / o)`` for travel times (both at
least 1 s), whose ``sd`` is then the relative one, ``sd / o``. Travel
times are compared on a log scale because their errors are
multiplicative: a route through a gridlock takes ten times its observed
time, and on a linear scale those few routes outweigh every speed and
count (the simulated objective then ranks ODs against their speed
errors); on a log scale ten times too long costs as much as ten times
too short.

Counts enter through a Student-t likelihood with ν = :data:`COUNT_DOF`
degrees of freedom instead of a normal one: a count's term is ``(ν + 1)
ln(1 + w r² / ν)``: ``(ν + 1) / ν · w r²`` for small errors, growing
only logarithmically for large ones, where the normal's ``w r²`` grows
with their square. A
segment behind a queue that formed on the observed day but not in the
simulation (or the other way round) counts a fraction or a multiple of
its observed flow, and such flips happen even at the true OD: there a
handful of them made up most of the objective, and the objective
ranked ODs by them rather than by how well they reproduce the network.

Demand held outside the network adds ``w_H · H / N``: ``H`` vehicles that
SUMO could not insert within 5 min of their planned departure
(:func:`egress.calibration.runs.held_outside`), each costing ``w_H`` =
:data:`HELD_WEIGHT` squared standard errors. No observation sees such a
queue: the counts behind a full on-ramp stay at what it carries whatever
the demand waiting before it, so without the term an OD that overloads an
entry fits as well as one that puts the same vehicles where they enter.
Found on the bench corridor from a doubled prior, where the calibrated ODs
held up to 490 of 4,259 vehicles at an on-ramp and scored 1.1-1.4 on
held-out seeds against 0.73 for the truth, which holds none. Event
vehicles queued in their lot are not held (their queue is real).

N is the number of observed values, ``x0`` the prior OD, ``s = max(x0, 1)``
and λ the regularisation weight. ``T_g`` is the total demand of group *g*
of OD rows (in calibration: each kind of trip in each interval) and σ
(``prior_sd``) says how far the prior's totals are trusted: a log-normal
prior, so that with the weights below ``N · J`` is minus twice the log
posterior, and a total halved or doubled costs as much as the data gain
of ``(ln 2 / σ)²`` squared standard errors. It keeps the calibration from
emptying a group that the observations cannot see well.

A simulation differs from the observations for three reasons even when
the OD is right: the measurement noise (``sd``, from the observations
table), the randomness of the observed day itself (the same event on
another day queues elsewhere) and the simulation's own randomness. In
congested networks the last two are much the larger, and a perfect model
makes them alike, so with :class:`ModelNoise` ``m`` the weights become
``weight / (sd² + 2 m²)``: ``m`` is a speed sd in km/h, a count sd as a
share of the observed count, and the sd of a travel time's logarithm.
:func:`estimate_model_noise` measures it from two simulations of one OD
with different seeds. With all noises in the weights a perfect OD scores
about 1, and no kind of value outweighs another with differences that
are only randomness.

Metamodel (:class:`Metamodel`)
------------------------------
A cheap analytical stand-in for ``J`` around the incumbent OD ``x_k``:

1. **Assignment.** Two linear maps from the OD to each observation *i*
   (a segment and an interval). ``P[i, r]`` is the share of OD row *r*'s
   vehicles that entered the segment (its first edge) in that interval,
   read from the vehroutes (exit times) of the last
   :data:`ASSIGNMENT_MEMORY` simulations: the served flow, which the
   counts see. ``D[i, r]`` is the same share for the vehicles' *planned*
   passages (entry into the network plus free-flow time along the route,
   :func:`egress.calibration.planned_crossings`): the demand on the
   segment, which keeps growing with the OD where the served flow stalls
   in a queue. An event car enters when it leaves its lot: the queue in the
   lot is outside the network (:func:`egress.calibration.runs.network_start`).
   The speed-flow relation takes the demand, ``q_i(x) = (D x)_i · 3600 /
   duration_i`` (veh/h), as a BPR curve does. In both, a
   row's own share is shrunk towards the share pooled over all intervals
   of the same (kind, origin, destination) — keyed by the time lag between
   the row's and the observation's interval starts — with ``m`` =
   :data:`SHRINKAGE` pseudo vehicles: ``P_r = (C_r + m · pooled_r) / (n_r
   + m)``. Rows with a fraction of a trip, which sample no vehicle, so
   still move the model.
2. **Speed–flow relation.** Per segment a BPR-type curve in pace (h/km):
   ``1/v = p0 + θ (q / Q)^β`` with ``p0, θ >= 0`` fitted by non-negative
   least squares to all simulated (demand, speed) samples of that segment
   so far, β ∈ {1, 2, 4} chosen by the smallest residual, ``Q`` the
   largest sampled demand.
3. **Correction.** Each prediction is corrected so that it equals the
   incumbent's simulation exactly, on the scale of its residual:
   ``v̂_i(x) = f_i(q_i(x)) + (v_i^sim - f_i(q_i(x_k)))``; counts ``ĉ_i =
   (P x)_i + (c_i^sim - (P x_k)_i)``; travel times scale with the pace,
   ``t̂_i = t_i^sim · f_i(q_i(x_k)) / f_i(q_i(x))``. Hence the model
   objective equals the simulated one at ``x_k`` and its gradient carries
   the fitted sensitivities.

4. **Entries.** The vehicles held outside are predicted per entry (the OD
   rows with one origin and interval, :attr:`egress.calibration.Problem.entries`)
   as the demand above what the entry carries: ``Ĥ_e = max(0, X_e(x) -
   c_e)`` with ``X_e`` the entry's trips. At an entry that held ``H_e`` of
   the incumbent's vehicles, ``c_e = X_e(x_k) - H_e`` (so that ``Ĥ`` equals
   the simulation there, and every trip added or removed adds or removes a
   held vehicle); at one that held vehicles only in other simulations, the
   most vehicles it took in time in any of them (:func:`entry_capacity`;
   the simulations of the assignment, near the incumbent: what an on-ramp
   takes depends on the traffic it merges into, and what it took in a
   gridlocked start would cap it long after the gridlock is gone);
   elsewhere nothing is held. Measured on the bench corridor (held-out
   score, mean of three seeds): 0.72 from a doubled prior and 0.77 from a
   uniform one, against 0.77 and 0.79 with the held vehicles in the
   objective but not in the model, whose proposals then overload entries
   it could have known about.

The model objective has an analytical gradient (chain rule through ``P``
and ``D``, checked against finite differences in the tests) and is minimised by
``scipy.optimize.minimize(method="L-BFGS-B")`` over factors that scale
groups of OD rows, ``x = x_k · θ[group]``, inside the trust region
``1 / (1 + Δ) <= θ <= 1 + Δ`` (symmetric in ratio: demand is scaled, so
halving it is as large a step as doubling it, and no step empties a
group). :func:`egress.calibration.driver.calibrate` simulates the proposal,
accepts it if the simulated objective improves, refits with the new
samples and grows (×2, when the model predicted the gain well, ρ > 0.5)
or shrinks (×0.5, on rejection or ρ < 0.1) Δ. It searches
coarse to fine (:data:`egress.calibration.LEVELS`): first one factor per
kind and interval (how many cars, and when), then per kind, interval and
origin zone, then every OD row whose trips reach an observation on its
own (the rows none reaches, which the observations cannot tell apart, per
kind and interval); it moves to the next level when a level
stops paying (two proposals in a row rejected or gaining under 1 % of J,
no predicted gain, or Δ below its floor), so the few simulations go
first to the few parameters the observations determine best. A level
after rejections starts with twice the shrunk Δ (at most the initial
one): the proposals that failed show how far the model can be trusted,
whatever the grouping. When the finest level stops paying and the budget
is not spent, the search starts again from the coarsest level (the model
has more samples by then), and it stops for good after a round of all
levels that improved nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, minimize, nnls

log = logging.getLogger(__name__)

#: Simulations whose routes form the assignment matrix.
ASSIGNMENT_MEMORY = 3
#: Pseudo vehicles with which a row's own assignment is shrunk to its OD pair's.
SHRINKAGE = 5.0
#: Exponents tried in the speed-flow relation.
BETAS = (1.0, 2.0, 4.0)
#: What one vehicle held outside the network adds to ``N · J`` (see the
#: objective). Measured on the bench corridor (held-out score, mean of three
#: calibration seeds; the truth scores 0.73): without the term 1.15 from a
#: doubled prior; with 1.0 the doubled start holds 4,300 vehicles, what its
#: entries took in that gridlock caps every increase and the search stops
#: after four simulations at 1.67, and from a uniform prior every proposal
#: that held vehicles was far worse than predicted (1.71, against 0.89
#: without); with 0.1, 0.72 and 0.77, and no answer holds a vehicle.
HELD_WEIGHT = 0.1
#: Lowest speed a prediction may take, km/h.
MIN_SPEED = 1.0

_KINDS = ("speed", "count", "travel_time")


@dataclass(frozen=True)
class ModelNoise:
    """The simulation's own spread, added to the measurement noise in the weights.

    Attributes
    ----------
    speed : float
        Standard deviation of a simulated speed, km/h.
    count : float
        Standard deviation of a simulated count as a share of the observed count.
    travel_time : float
        Standard deviation of the logarithm of a simulated travel time
        (about a share of it, for small values).
    """

    speed: float = 0.0
    count: float = 0.0
    travel_time: float = 0.0

    def sd(self, kind: str, value: np.ndarray) -> np.ndarray:
        """The model sd of observed values `value` of `kind`, on the scale of
        the objective's residual (see :func:`residual`)."""
        value = np.asarray(value, dtype=float)
        if kind == "count":
            return self.count * np.abs(value)
        return np.full(value.shape, getattr(self, kind))


#: Shortest travel time the log residual takes, s.
MIN_TRAVEL_TIME = 1.0
#: Degrees of freedom of the counts' Student-t likelihood in the objective.
COUNT_DOF = 4.0


def loss(kind: str, z2: np.ndarray) -> np.ndarray:
    """The objective's term of squared standardised errors `z2` (``w r²``):
    ``z2`` itself, for counts the Student-t's ``(ν + 1) ln(1 + z2 / ν)``."""
    if kind == "count":
        return (COUNT_DOF + 1.0) * np.log1p(z2 / COUNT_DOF)
    return z2


def loss_slope(kind: str, z2: np.ndarray) -> np.ndarray:
    """The derivative of :func:`loss` with respect to `z2`."""
    if kind == "count":
        return (COUNT_DOF + 1.0) / (COUNT_DOF + z2)
    return np.ones_like(z2)


def residual(kind: str, y: np.ndarray, o: np.ndarray) -> np.ndarray:
    """The objective's residual of simulated `y` against observed `o`:
    ``ln(y / o)`` for travel times (both at least :data:`MIN_TRAVEL_TIME`),
    ``y - o`` otherwise."""
    if kind == "travel_time":
        return np.log(np.maximum(y, MIN_TRAVEL_TIME) / np.maximum(o, MIN_TRAVEL_TIME))
    return y - o


def estimate_model_noise(a: dict[str, np.ndarray], b: dict[str, np.ndarray],
                         idx: dict[str, np.ndarray]) -> ModelNoise:
    """Estimate :class:`ModelNoise` from two simulations of one OD with different seeds.

    For two independent replications the difference has twice the variance
    of one, so per kind, over the n observed rows `idx[kind]`::

        speed:         m² = Σ (a - b)² / (2 n)
        count:         m² = Σ ((a - b) / μ)² / (2 n),  μ = max((a + b) / 2, 1)
        travel time:   m² = Σ ln(a / b)² / (2 n)

    the maximum-likelihood estimates under the variance model of the
    weights (a constant sd for speeds and log travel times, an sd
    proportional to the value for counts).

    Parameters
    ----------
    a, b : dict
        Simulated ``speed``, ``count`` and ``travel_time`` per observation row.
    idx : dict
        Per kind, the observation rows that observe it.
    """
    out = {}
    for kind in _KINDS:
        i = idx.get(kind, np.array([], dtype=int))
        ya, yb = np.asarray(a[kind], dtype=float)[i], np.asarray(b[kind], dtype=float)[i]
        ok = np.isfinite(ya) & np.isfinite(yb)
        ya, yb = ya[ok], yb[ok]
        if not len(ya):
            out[kind] = 0.0
        elif kind == "count":
            mu = np.maximum((ya + yb) / 2, 1.0)
            out[kind] = float(np.sqrt(np.sum(((ya - yb) / mu) ** 2) / (2 * len(ya))))
        else:
            d = residual(kind, ya, yb)
            out[kind] = float(np.sqrt(np.sum(d ** 2) / (2 * len(ya))))
    return ModelNoise(**out)


@dataclass
class Targets:
    """The observed values the objective compares against.

    Attributes
    ----------
    idx, value, weight : dict
        Per kind (``speed``, ``count``, ``travel_time``): observation-row
        indices with that value, the values, ``weight / (sd² + 2 m²)`` (m the
        :class:`ModelNoise`, 0 without; for travel times both relative, on
        the log residual's scale).
    n_obs : int
        Observation rows.
    prior, scale : numpy.ndarray
        ``x0`` and ``s = max(x0, 1)``.
    regularization : float
        λ.
    model_noise : ModelNoise or None
    groups : numpy.ndarray or None
        Group code of each OD row for the prior on totals (None: no such prior).
    prior_sd : float
        σ of the prior on group totals (log scale).
    """

    idx: dict[str, np.ndarray]
    value: dict[str, np.ndarray]
    weight: dict[str, np.ndarray]
    n_obs: int
    prior: np.ndarray
    scale: np.ndarray
    regularization: float = 0.0
    model_noise: ModelNoise | None = None
    groups: np.ndarray | None = None
    prior_sd: float = 0.5

    def __post_init__(self) -> None:
        if self.groups is not None:
            self.groups = np.asarray(self.groups)
            self._totals0 = np.bincount(self.groups, weights=self.prior)
            self._has = self._totals0 > 0

    @classmethod
    def from_observations(cls, obs, prior: np.ndarray, regularization: float = 0.0,
                          model_noise: ModelNoise | None = None,
                          groups: np.ndarray | None = None, prior_sd: float = 0.5
                          ) -> Targets:
        """Build from an :class:`egress.calibration.observations.Observations`."""
        idx, value, weight = {}, {}, {}
        t = obs.table
        for kind in _KINDS:
            idx[kind], value[kind], _ = obs.values(kind)
            i = idx[kind]
            sd = t[f"{kind}_sd"].to_numpy(dtype=float)[i]
            if kind == "travel_time":
                sd = sd / np.maximum(value[kind], MIN_TRAVEL_TIME)
            m = model_noise.sd(kind, value[kind]) if model_noise is not None else 0.0
            weight[kind] = t["weight"].to_numpy(dtype=float)[i] / (sd ** 2 + 2.0 * m ** 2)
        prior = np.asarray(prior, dtype=float)
        return cls(idx, value, weight, len(obs), prior, np.maximum(prior, 1.0), regularization,
                   model_noise, groups, prior_sd)

    @property
    def n_values(self) -> int:
        return int(sum(len(v) for v in self.value.values()))

    def regularizer(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The prior terms of ``J`` (on group totals, and λ's on rows) and their gradient."""
        x = np.asarray(x, dtype=float)
        value, grad = 0.0, np.zeros(len(x))
        if self.groups is not None and len(x):
            tot = np.maximum(np.bincount(self.groups, weights=x,
                                         minlength=len(self._totals0)), 1e-12)
            z = np.where(self._has, np.log(tot / np.where(self._has, self._totals0, 1.0)), 0.0)
            n = max(self.n_values, 1)
            value += float(np.sum(z ** 2)) / (self.prior_sd ** 2 * n)
            grad += (2.0 * z / (self.prior_sd ** 2 * n * tot))[self.groups]
        if self.regularization and len(x):
            value += float(self.regularization * np.mean(((x - self.prior) / self.scale) ** 2))
            grad += 2.0 * self.regularization / len(x) * (x - self.prior) / self.scale ** 2
        return value, grad

    def misfit(self, sim: dict[str, np.ndarray]) -> float:
        """The data term of ``J`` for simulated values `sim` (kind -> array over
        observation rows)."""
        total = 0.0
        for kind in _KINDS:
            i = self.idx[kind]
            if len(i):
                r = residual(kind, sim[kind][i], self.value[kind])
                total += float(np.sum(loss(kind, self.weight[kind] * r ** 2)))
        return total / max(self.n_values, 1)

    def held(self, sim: dict[str, np.ndarray]) -> float:
        """The term of ``J`` for the vehicles held outside the network (`sim`'s
        ``held``, any shape; none if absent)."""
        held = sim.get("held")
        return 0.0 if held is None else HELD_WEIGHT * float(np.sum(held)) / max(self.n_values, 1)

    def objective(self, sim: dict[str, np.ndarray], x: np.ndarray) -> float:
        """``J`` for simulated values `sim` (kind -> array over observation rows;
        ``held``, vehicles held outside the network)."""
        return self.misfit(sim) + self.regularizer(x)[0] + self.held(sim)

    def standardized(self, sim: dict[str, np.ndarray], slope: dict[str, np.ndarray] | None = None
                     ) -> np.ndarray:
        """The residuals of `sim` as one vector ``z`` with ``misfit ≈ mean(z²)`` near
        `sim`: ``sqrt(w · ρ'(w r²)) · r`` per observed value (the robust loss of
        counts enters through its slope, taken at `slope`'s residuals if given,
        as iteratively reweighted least squares does)."""
        parts = []
        for kind in _KINDS:
            i = self.idx[kind]
            if not len(i):
                continue
            r = residual(kind, sim[kind][i], self.value[kind])
            at = r if slope is None else residual(kind, slope[kind][i], self.value[kind])
            w = self.weight[kind]
            parts.append(np.sqrt(w * loss_slope(kind, w * at ** 2)) * r)
        return np.concatenate(parts) if parts else np.zeros(0)


# --------------------------------------------------------------------------- assignment

def assignment_matrix(sims: list[dict], rows: pd.DataFrame, obs_key: pd.DataFrame,
                      memory: int = ASSIGNMENT_MEMORY, shrinkage: float = SHRINKAGE
                      ) -> sparse.csr_matrix:
    """The shares ``P`` (observations × OD rows) from the last simulations.

    Parameters
    ----------
    sims : list of dict
        Each with ``crossings`` (sparse rows × observations, vehicles of row
        r entering observation i's first edge in its interval) and
        ``vehicles`` (vehicles simulated per row).
    rows : pandas.DataFrame
        Per OD row: ``group`` (int code of kind/origin/destination) and
        ``begin``.
    obs_key : pandas.DataFrame
        Per observation row: ``seg`` (int code of the segment) and ``begin``.
    """
    use = sims[-memory:]
    n_rows, n_obs = len(rows), len(obs_key)
    own = sparse.csr_matrix((n_rows, n_obs))
    n = np.zeros(n_rows)
    for s in use:
        own = own + s["crossings"]
        n = n + s["vehicles"]
    own = own.tocoo()
    group = rows["group"].to_numpy()
    # times in ms as integers, so that a row's begin plus a lag finds the interval exactly
    rbegin = np.round(rows["begin"].to_numpy(dtype=float) * 1000).astype(np.int64)
    seg = obs_key["seg"].to_numpy().astype(np.int64)
    obegin = np.round(obs_key["begin"].to_numpy(dtype=float) * 1000).astype(np.int64)
    n_group = np.bincount(group, weights=n, minlength=group.max() + 1 if n_rows else 0)
    # pooled over the intervals of an OD pair: vehicles by (pair, segment, time lag)
    lag_code, lags = pd.factorize(obegin[own.col] - rbegin[own.row])
    n_seg = int(seg.max()) + 1 if n_obs else 1
    key = (group[own.row].astype(np.int64) * n_seg + seg[own.col]) * max(len(lags), 1) + lag_code
    ukey, inverse = np.unique(key, return_inverse=True)
    cnt = np.bincount(inverse, weights=own.data, minlength=len(ukey))
    pool = np.stack([ukey // max(len(lags), 1) // n_seg, ukey // max(len(lags), 1) % n_seg,
                     np.asarray(lags, dtype=np.int64)[ukey % max(len(lags), 1)]]) \
        if len(ukey) else np.zeros((3, 0), dtype=np.int64)
    share = cnt / n_group[pool[0]] if len(ukey) else cnt
    # every row of a pair meets each of its pair's pooled entries at its own begin + lag
    order = np.argsort(pool[0], kind="stable")
    pool, share = pool[:, order], share[order]
    has = np.flatnonzero(n_group[group] > 0)
    first = np.searchsorted(pool[0], group[has])
    count = np.searchsorted(pool[0], group[has], side="right") - first
    r, e = _ragged(has, first, count)
    # ... and the observation of that segment starting then (if any)
    span = int(max(np.abs(obegin).max(initial=0), np.abs(rbegin).max(initial=0))) * 4 + 1
    okey = seg * span + obegin
    oorder = np.argsort(okey, kind="stable")
    want = pool[1, e] * span + rbegin[r] + pool[2, e]
    lo = np.searchsorted(okey[oorder], want)
    hit = np.searchsorted(okey[oorder], want, side="right") - lo
    k, at = _ragged(np.arange(len(want)), lo, hit)
    pooled = sparse.csr_matrix((share[e[k]], (r[k], oorder[at])), shape=(n_rows, n_obs))
    denom = 1.0 / (n + shrinkage)
    p = sparse.diags(denom) @ (own.tocsr() + shrinkage * pooled)
    return p.T.tocsr()


def _ragged(owner: np.ndarray, start: np.ndarray, count: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """``owner[j]`` repeated ``count[j]`` times, with the positions ``start[j], ...,
    start[j] + count[j] - 1``."""
    total = int(count.sum())
    rep = np.repeat(np.arange(len(count)), count)
    offset = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    return owner[rep], start[rep] + offset


# --------------------------------------------------------------------------- speed-flow

@dataclass
class SpeedFlow:
    """Per-observation-row parameters of ``1/v = p0 + θ (q/Q)^β`` (pace in h/km)."""

    p0: np.ndarray
    theta: np.ndarray
    beta: np.ndarray
    q_ref: np.ndarray

    def pace(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pace and its derivative with respect to the flow q (veh/h)."""
        u = np.maximum(q, 0.0) / self.q_ref
        p = self.p0 + self.theta * u ** self.beta
        dp = self.theta * self.beta * u ** (self.beta - 1.0) / self.q_ref
        return p, dp


def fit_speed_flow(seg: np.ndarray, samples_q: list[np.ndarray], samples_v: list[np.ndarray],
                   free_speed: np.ndarray) -> SpeedFlow:
    """Fit the speed-flow relation per segment to simulated samples.

    Parameters
    ----------
    seg : numpy.ndarray
        Segment code per observation row.
    samples_q, samples_v : list of numpy.ndarray
        Per simulation, the flow (veh/h) and speed (km/h) per observation row.
    free_speed : numpy.ndarray
        km/h per observation row, used when a segment has no usable sample.
    """
    q = np.concatenate(samples_q)
    v = np.concatenate(samples_v)
    s = np.tile(seg, len(samples_q))
    n_seg = int(seg.max()) + 1 if len(seg) else 0
    p0 = np.zeros(n_seg)
    th = np.zeros(n_seg)
    be = np.ones(n_seg)
    qr = np.ones(n_seg)
    free = np.zeros(n_seg)
    free[seg] = free_speed
    order = np.argsort(s, kind="stable")
    bounds = np.searchsorted(s[order], np.arange(n_seg + 1))
    for k in range(n_seg):
        sel = order[bounds[k]:bounds[k + 1]]
        qk, pk = q[sel], 1.0 / np.maximum(v[sel], MIN_SPEED)
        p0[k] = 1.0 / max(free[k], MIN_SPEED)
        if len(sel) == 0 or qk.max() <= 0:
            continue
        qr[k] = qk.max()
        best = None
        for b in BETAS:
            a = np.column_stack([np.ones_like(qk), (qk / qr[k]) ** b])
            coef, res = nnls(a, pk)
            if best is None or res < best[0] - 1e-12:
                best = (res, coef, b)
        _, coef, b = best
        p0[k], th[k], be[k] = max(coef[0], 1e-4), coef[1], b
    return SpeedFlow(p0[seg], th[seg], be[seg], qr[seg])


# --------------------------------------------------------------------------- entries

def entry_capacity(entry: np.ndarray, x_k: np.ndarray, held_k: np.ndarray,
                   samples: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """What each entry carries in time, ``c_e`` of the metamodel (item 4).

    Parameters
    ----------
    entry : numpy.ndarray
        Entry code per OD row (0 .. n-1; -1: a row whose vehicles are never held).
    x_k, held_k : numpy.ndarray
        The incumbent's trips and vehicles held (mean over its draws) per OD row.
    samples : list of (numpy.ndarray, numpy.ndarray)
        Per simulation, vehicles and vehicles held per OD row.

    Returns
    -------
    numpy.ndarray
        Trips per entry; ``inf`` where no simulation held a vehicle.
    """
    use = entry >= 0
    n_e = int(entry.max()) + 1 if use.any() else 0

    def per_entry(v: np.ndarray) -> np.ndarray:
        return np.bincount(entry[use], weights=np.asarray(v, dtype=float)[use], minlength=n_e)

    cap = np.full(n_e, np.inf)
    taken = np.full(n_e, -np.inf)
    ever = np.zeros(n_e, dtype=bool)
    for n, h in samples:
        h_e = per_entry(h)
        ever |= h_e > 0
        taken = np.maximum(taken, per_entry(n) - h_e)
    cap[ever] = np.maximum(taken[ever], 0.0)
    x_e, h_k = per_entry(x_k), per_entry(held_k)
    now = h_k > 0
    # the incumbent's entries carried what it did not hold (so the model holds its
    # vehicles exactly there)
    cap[now] = np.maximum(x_e[now] - h_k[now], 0.0)
    cap[~now] = np.maximum(cap[~now], x_e[~now])
    return cap


# --------------------------------------------------------------------------- the model

class Metamodel:
    """The corrected analytical model of the simulated values around an incumbent.

    Parameters
    ----------
    targets : Targets
    p : scipy.sparse.csr_matrix
        Assignment shares (observations × OD rows), see :func:`assignment_matrix`.
    per_hour : numpy.ndarray
        ``3600 / duration`` per observation row.
    curve : SpeedFlow
    x_k : numpy.ndarray
        The incumbent OD.
    sim_k : dict
        Its simulated ``speed``, ``count`` and ``travel_time`` per observation row.
    demand : scipy.sparse.csr_matrix, optional
        Shares like `p` of the planned passages (demand), the flow the
        speed-flow relation takes; default `p`.
    entry : numpy.ndarray, optional
        Entry code per OD row (-1: never held), see
        :attr:`egress.calibration.Problem.entries`; default none.
    capacity : numpy.ndarray, optional
        Trips each entry carries in time (:func:`entry_capacity`); default
        unlimited.
    """

    def __init__(self, targets: Targets, p: sparse.csr_matrix, per_hour: np.ndarray,
                 curve: SpeedFlow, x_k: np.ndarray,
                 sim_k: dict[str, np.ndarray], demand: sparse.csr_matrix | None = None,
                 entry: np.ndarray | None = None, capacity: np.ndarray | None = None):
        self.t = targets
        self.p = p
        self.pt = p.T.tocsr()
        self.d = p if demand is None else demand
        self.dt = self.d.T.tocsr()
        self.per_hour = per_hour
        self.curve = curve
        self.x_k = np.asarray(x_k, dtype=float)
        pace_k, _ = curve.pace(self._flow(self.x_k))
        self.off_speed = sim_k["speed"] - 1.0 / pace_k
        self.off_count = sim_k["count"] - self.p @ self.x_k
        self.tt_per_pace = sim_k["travel_time"] / pace_k
        self.entry = np.full(len(self.x_k), -1) if entry is None else np.asarray(entry)
        known = self.entry >= 0
        n_e = int(self.entry.max()) + 1 if known.any() else 0
        self.capacity = (np.full(n_e, np.inf) if capacity is None
                         else np.asarray(capacity, dtype=float))
        # the rows of entries with a limit (the others never hold a vehicle)
        self._limited = known.copy()
        self._limited[known] = np.isfinite(self.capacity[self.entry[known]])

    def _flow(self, x: np.ndarray) -> np.ndarray:
        return (self.d @ x) * self.per_hour

    def _held(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted vehicles held per entry, and per OD row whether a trip more
        is one held more."""
        e = self.entry[self._limited]
        demand = np.bincount(e, weights=x[self._limited], minlength=len(self.capacity))
        over = np.maximum(demand - self.capacity, 0.0)  # unlimited: 0 - inf
        at = np.zeros(len(x))
        at[self._limited] = (over > 0)[e]
        return over, at

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Predicted speed (km/h), count and travel time (s) per observation row."""
        pace, _ = self.curve.pace(self._flow(x))
        return {"speed": np.maximum(1.0 / pace + self.off_speed, MIN_SPEED),
                "count": self.p @ x + self.off_count,
                "travel_time": self.tt_per_pace * pace, "held": self._held(x)[0]}

    def objective(self, x: np.ndarray) -> float:
        """The model's ``J(x)``."""
        return self.t.objective(self.predict(x), x)

    def objective_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``J(x)`` and its analytical gradient."""
        t = self.t
        q = self._flow(x)
        pace, dpace = self.curve.pace(q)
        speed_raw = 1.0 / pace + self.off_speed
        tt = self.tt_per_pace * pace
        pred = {"speed": np.maximum(speed_raw, MIN_SPEED), "count": self.p @ x + self.off_count,
                "travel_time": tt}
        # derivatives of the residuals with respect to the flow
        d_dq = {"speed": np.where(speed_raw > MIN_SPEED, -dpace / pace ** 2, 0.0),
                "travel_time": np.where(tt > MIN_TRAVEL_TIME, dpace / pace, 0.0)}
        scale = 2.0 / max(t.n_values, 1)
        g_obs = np.zeros(t.n_obs)   # dJ/d(P x)_i
        g_dem = np.zeros(t.n_obs)   # dJ/d(D x)_i
        for kind in _KINDS:
            i = t.idx[kind]
            if not len(i):
                continue
            res = residual(kind, pred[kind][i], t.value[kind])
            r = t.weight[kind] * res * loss_slope(kind, t.weight[kind] * res ** 2)
            if kind == "count":
                np.add.at(g_obs, i, scale * r)
            else:
                np.add.at(g_dem, i, scale * r * d_dq[kind][i] * self.per_hour[i])
        held, held_grad = self._held(x)
        grad = self.pt @ g_obs + self.dt @ g_dem + HELD_WEIGHT * held_grad / max(t.n_values, 1)
        prior, prior_grad = t.regularizer(x)
        return t.misfit(pred) + prior + t.held({"held": held}), grad + prior_grad

    def minimize(self, radius: float, groups: np.ndarray | None = None, maxiter: int = 30,
                 unseen: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Minimise the model inside the trust region of relative `radius`.

        The search moves OD rows by factors: ``x = x_k · θ[group]`` with
        ``1 / (1 + radius) <= θ <= 1 + radius``, one factor per group of
        rows (`groups`, an integer code per row; default every row its own
        group). Only rows the model can move take part: rows with trips that
        reach some observation (a non-zero column of ``P`` or ``D``), that
        differ from the prior (pulled back by the regularisation), or any
        row when there is a prior on group totals; the others keep their
        value, which is exact since their gradient is zero. Rows without
        trips stay without. With `unseen` (an integer code per row), rows
        whose trips reach no observation move with one factor per `unseen`
        code instead of by `groups`: the observations cannot tell them
        apart, and a search over every single row stays with the rows the
        observations speak about.

        Returns
        -------
        x, predicted objective
        """
        t = self.t
        n = len(self.x_k)
        groups = np.arange(n) if groups is None else np.asarray(groups)
        seen = (np.diff(self.pt.indptr) > 0) | (np.diff(self.dt.indptr) > 0)
        if unseen is not None:
            groups = np.where(seen, groups, groups.max() + 1 + np.asarray(unseen))
        active = (seen | (self.x_k != t.prior) | (t.groups is not None)) & (self.x_k > 0)
        if not active.any():
            return self.x_k.copy(), float(self.objective(self.x_k))
        codes, g = np.unique(groups[active], return_inverse=True)
        xa = self.x_k[active]
        base = self.x_k.copy()

        def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
            x = base.copy()
            x[active] = xa * theta[g]
            f, grad = self.objective_and_gradient(x)
            return f, np.bincount(g, weights=grad[active] * xa, minlength=len(codes))

        lo = 1.0 / (1.0 + radius)
        res = minimize(fun, np.ones(len(codes)), jac=True, method="L-BFGS-B",
                       bounds=Bounds(np.full(len(codes), lo), np.full(len(codes), 1.0 + radius)),
                       options={"maxiter": maxiter, "maxcor": 5, "ftol": 1e-10, "gtol": 1e-8})
        x = base.copy()
        x[active] = xa * np.clip(res.x, lo, 1.0 + radius)[g]
        return x, float(self.objective(x))


__all__ = ["ASSIGNMENT_MEMORY", "COUNT_DOF", "MIN_TRAVEL_TIME", "Metamodel", "ModelNoise",
           "SHRINKAGE", "SpeedFlow", "Targets", "assignment_matrix", "entry_capacity",
           "estimate_model_noise", "fit_speed_flow", "loss", "loss_slope", "residual"]

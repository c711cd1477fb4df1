"""The searches a calibration runs: the metamodel with supply steps, and SPSA.

Metamodel search (:func:`run_metamodel`)
    OD steps: the physics-informed metamodel (:mod:`egress.calibration.metamodel`)
    proposes a new OD inside a trust region, level by level from coarse
    groups of OD rows to single rows (:data:`egress.calibration.problem.LEVELS`),
    as before. The metamodel is fitted only to evaluations that ran with the
    incumbent's supply parameters: its speed-flow relation is a property of
    the supply.
Supply steps (:func:`supply_step`)
    When the calibration moves supply parameters (signal delay, capacity or
    speed factors), it starts with a supply step and makes one whenever the
    OD search finishes a level: each parameter is moved by a finite
    difference (one simulation each, taken on the side that relieves
    congestion: a probe past a gridlock cliff measures the cliff, not the
    slope) and a Gauss-Newton step on the standardized residuals, bounded
    and inside a trust region, is simulated.
    The OD cannot make a signalised arterial slower than its free flow plus
    its signal delay, nor a freeway faster than its limits allow; the
    supply can.
    Around an incumbent that has not changed since the last supply step,
    the probes are not simulated again (same OD, supply and seed: the same
    result), and a step already simulated from it is not repeated: in the
    real SODO calibration three supply steps in a row around one incumbent
    had spent 15 of its 40 simulations on identical runs.
No giving up early
    A round of levels that improved nothing does not end the search: the
    next round starts with a wider trust region (a restart). The search
    stops before the budget only when it has *converged*: two rounds in a
    row without an improvement, the last supply step without one, and no
    level's predicted gain above the objective's own noise (estimated from
    the start's replicate, then from the last incumbent drawn twice). The
    reason is recorded in the summary.
    A lucky draw does not freeze it either: after :data:`REDRAW_AFTER`
    proposals in a row fail against the same incumbent, the incumbent is
    simulated again with the next seed and scored by the mean of its draws
    (:meth:`egress.calibration.driver._Runner.redraw_best`, at most
    :data:`MAX_REDRAWS` times), and the metamodel
    is built around that mean. Measured on the bench corridor from a doubled
    prior: without it the search spent 25 of its 30 simulations failing
    against an incumbent whose draw was 0.94 and whose OD gave 1.68 on
    held-out seeds.
A lucky draw is not the answer
    The calibrated OD is the incumbent when the budget ends. One drawn
    only once late in the search is the lowest of many noisy draws, and
    it is what the user gets: so the last :data:`FINAL_CHECKS`
    simulations of the budget go to redrawing an incumbent that has a
    single draw (which may hand its place to a candidate already drawn
    more often; the start has its replicate), and no supply step starts
    that could not simulate its step before them. If the budget ends on an
    incumbent drawn once whose lead lies within the noise, the answer is the
    candidate with the lowest mean over two or more draws
    (:func:`_answer_drawn_twice`). Found on the bench
    corridor from a doubled prior: an OD accepted by one draw of 0.89 four
    simulations before the end, never drawn again, scored 1.50 on held-out
    seeds (1.40 for the run's answer with the checks; over three
    calibration seeds the mean held-out score stayed 1.15: the checks make
    the reported objective honest more than they improve the OD).
SPSA (:func:`run_spsa`)
    The baseline: the OD rows and the supply parameters in one vector, the
    supply scaled to its range and kept within its bounds.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from scipy.optimize import lsq_linear

from ..config.supply import relieving_direction
from .metamodel import (
    ASSIGNMENT_MEMORY,
    Metamodel,
    assignment_matrix,
    entry_capacity,
    fit_speed_flow,
)
from .problem import LEVELS
from .spsa import spsa

log = logging.getLogger(__name__)

#: Initial, largest and smallest relative trust-region radius of the metamodel.
RADIUS = (0.5, 2.0, 0.01)
#: Proposals in a row that failed (rejected, or gained less than
#: :data:`LEVEL_GAIN` of the objective) after which the metamodel refines its level.
LEVEL_PATIENCE = 2
LEVEL_GAIN = 0.01
#: Rounds of levels in a row without an improvement before the search may
#: declare convergence.
QUIET_ROUNDS = 2
#: Proposals in a row that failed against one incumbent after which it is
#: simulated again (see "No giving up early").
REDRAW_AFTER = 3
#: Most further simulations of one incumbent.
MAX_REDRAWS = 3
#: Simulations at the end of the budget reserved for redrawing an incumbent
#: drawn only once (see "A lucky draw is not the answer").
FINAL_CHECKS = 2
#: Finite-difference step of a supply parameter, as a share of its range, and
#: the initial trust region of a supply step (share of the range).
SUPPLY_PROBE = 0.15
SUPPLY_RADIUS = 0.5


def same_supply(a: np.ndarray, b: np.ndarray) -> bool:
    return len(a) == len(b) and bool(np.allclose(a, b, rtol=1e-9, atol=1e-12))


class _State:
    """Where the metamodel search stands."""

    def __init__(self) -> None:
        self.radius = RADIUS[0]
        self.level = 0
        self.fails = 0
        self.it = 0
        self.quiet = 0                 # rounds in a row without an improvement
        self.round_start = None        # the incumbent when the round started
        self.round_gain = 0.0          # the largest predicted gain of the round
        self.supply_radius = SUPPLY_RADIUS
        self.supply_failed = False
        self.supply_k = 0
        # the incumbent of the last supply step, the Jacobian measured around it and
        # the steps simulated from it
        self.supply_centre = None
        self.supply_jac = np.zeros((0, 0))
        self.supply_steps: list[np.ndarray] = []
        self.stale = 0                 # proposals in a row that failed against the incumbent


def run_metamodel(run) -> str:
    """The metamodel search on `run` (a calibration's runner) until its budget is
    spent or it converges.

    Returns
    -------
    str
        Why it stopped.
    """
    try:
        return _search_metamodel(run)
    finally:
        _answer_drawn_twice(run)


def _search_metamodel(run) -> str:
    p = run.p
    s = _State()
    s.round_start = run.best
    moves_supply = len(p.supply_names) > 0
    if moves_supply:
        supply_step(run, s)
    while len(run.history) < run.budget:
        if s.radius < RADIUS[2] or s.fails >= LEVEL_PATIENCE:
            if s.level == len(p.levels) - 1:
                reason = _end_round(run, s, moves_supply)
                if reason:
                    return reason
            else:
                # the region says how far the model can be trusted, which regrouping the
                # rows does not change: after rejections the next level starts from
                # twice the shrunk radius, after no predicted gain from the initial one
                s.radius = RADIUS[0] if s.radius < RADIUS[2] else min(RADIUS[0], 2 * s.radius)
                s.level, s.fails = s.level + 1, 0
            log.info("metamodel: level %d (%s)", s.level + 1, ", ".join(LEVELS[s.level]))
            # a supply step that cannot simulate its step before the final checks would
            # spend its probes for nothing
            if moves_supply and (run.budget - len(run.history)
                                 >= _supply_cost(run, s) + FINAL_CHECKS):
                supply_step(run, s)
            elif moves_supply:
                s.supply_failed = True  # no step left to take: the OD search may converge
        # the start has its second draw already (the replicate)
        if (run.budget - len(run.history) <= FINAL_CHECKS and not run.best.redraws
                and run.best is not run.evals[0]):
            run.redraw_best()
            continue
        _od_step(run, s)
    return "budget spent"


def _answer_drawn_twice(run) -> None:
    """At the end of the search, an incumbent drawn once gives its place to the
    candidate with the lowest mean over two or more draws, if there is one and
    the incumbent's lead over it lies within the objective's noise (one
    draw's standard deviation, :attr:`egress.calibration.driver._Runner.objective_noise`).

    The final checks (see "A lucky draw is not the answer") redraw an
    incumbent drawn once; when its mean is worse than another candidate's
    single draw, that candidate becomes the incumbent, and the budget may end
    before it is drawn again. Where the OD sits near a tipping point every
    such draw is a lottery: on the bench's large event from a uniform prior
    (seed 5) three incumbents in a row drew 0.39-0.44 and then 0.55-1.32 on
    their second draws, and the fourth, drawn once at 0.44, was the answer
    and scored 2.08 on held-out seeds; the answer is now the second of them
    (0.41 and 0.55), which scores 1.44.
    """
    best = run.best
    # the start has its second draw in the replicate
    if best is None or best.redraws or best is run.evals[0]:
        return
    drawn = [c for c in run.candidates if c.redraws]
    if not drawn:
        return
    other = min(drawn, key=lambda e: e.objective)
    # a lead larger than one draw's noise is not luck
    if other.objective - best.objective > getattr(run, "objective_noise", 0.0):
        return
    run.set_best(other)
    log.info("metamodel: the answer is sim %d (%.4g over %d draws), not the incumbent drawn "
             "once (%.4g)", run.best_sim, other.objective, 1 + len(other.redraws),
             best.objective)


def _end_round(run, s: _State, moves_supply: bool) -> str | None:
    """A round of levels ended: declare convergence, or restart wider."""
    # both objectives as scored now: a new estimate of the model noise rescores every
    # evaluation, so a number kept from the round's start may be on another scale
    improved = run.best.objective < s.round_start.objective - 1e-12
    s.quiet = 0 if improved else s.quiet + 1
    noise = getattr(run, "objective_noise", 0.0)
    if (s.quiet >= QUIET_ROUNDS and (not moves_supply or s.supply_failed)
            and s.round_gain <= noise):
        return (f"converged: {s.quiet} rounds of levels without an improvement and no predicted "
                f"gain above the objective's noise ({noise:.3g})")
    # restart: a round that improved nothing starts again wider
    s.radius = min(RADIUS[1], RADIUS[0] * (2.0 if not improved else 1.0))
    s.level, s.fails = 0, 0
    s.round_start, s.round_gain = run.best, 0.0
    if not improved:
        log.info("metamodel: a round without an improvement; restarting wider (radius %.2f)",
                 s.radius)
    return None


def model_around(run) -> Metamodel:
    """The metamodel around the incumbent, from the evaluations with its supply."""
    p, best = run.p, run.best
    evals = [e for e in run.evals if same_supply(e.theta, best.theta)]
    pmat = assignment_matrix([{"crossings": e.crossings, "vehicles": e.vehicles}
                              for e in evals], p.rows, p.obs_key)
    pdem = assignment_matrix([{"crossings": e.planned, "vehicles": e.vehicles}
                              for e in evals], p.rows, p.obs_key)
    curve = fit_speed_flow(p.obs_key["seg"].to_numpy(), [e.demand(p.per_hour) for e in evals],
                           [e.values["speed"].to_numpy(dtype=float) for e in evals],
                           p.obs.table["free_speed"].to_numpy(dtype=float))
    sim_k = best.mean_sim()
    # what an entry takes depends on the traffic it merges into: the simulations the
    # assignment comes from are the ones near the incumbent
    cap = entry_capacity(p.entries, best.x, sim_k["held"],
                         [(e.vehicles, e.held) for e in evals[-ASSIGNMENT_MEMORY:]])
    return Metamodel(run.targets, pmat, p.per_hour, curve, best.x, sim_k, demand=pdem,
                     entry=p.entries, capacity=cap)


def _od_step(run, s: _State) -> None:
    """One OD proposal of the metamodel at the current level and radius."""
    p, best = run.p, run.best
    s.it += 1
    t0 = time.perf_counter()
    model = model_around(run)
    last = len(p.levels) - 1
    # on the finest level the rows no observation sees move per kind and interval
    x_new, m_new = model.minimize(s.radius, p.levels[s.level],
                                  unseen=p.levels[0] if s.level == last else None)
    run.model_s += time.perf_counter() - t0
    predicted = best.objective - m_new
    s.round_gain = max(s.round_gain, predicted)
    if predicted <= 1e-9 * max(1.0, best.objective):
        s.radius = RADIUS[2] / 2  # nothing to gain at this level: refine
        log.info("metamodel: no predicted gain at level %d", s.level + 1)
        return
    ev = run(x_new, f"it{s.it}", theta=best.theta,
             info={"level": s.level + 1, "radius": s.radius, "predicted": m_new})
    rho = (best.objective - ev.objective) / predicted
    if ev.objective < best.objective:
        # a gain below LEVEL_GAIN of the objective counts as a failure of the level
        small = best.objective - ev.objective < LEVEL_GAIN * best.objective
        s.fails = s.fails + 1 if small else 0
        if rho > 0.5:
            s.radius = min(2.0 * s.radius, RADIUS[1])
        elif rho < 0.1:
            s.radius *= 0.5
    else:
        s.radius *= 0.5
        s.fails += 1
    log.info("metamodel it %d (level %d): J %.4g (model %.4g), rho %.2f, radius %.3g", s.it,
             s.level + 1, ev.objective, m_new, rho, s.radius)
    s.stale = 0 if run.best is ev else s.stale + 1
    if s.stale >= REDRAW_AFTER and len(run.best.redraws) < MAX_REDRAWS:
        s.stale = 0
        run.redraw_best()


def _supply_cost(run, s: _State) -> int:
    """Simulations the next :func:`supply_step` takes at most: its step, and a
    probe per parameter unless it can reuse the last step's."""
    return 1 + (0 if s.supply_centre is run.best else len(run.p.supply_names))


def supply_step(run, s: _State) -> None:
    """One Gauss-Newton step on the supply parameters around the incumbent.

    Costs one simulation per parameter (finite differences; none when the
    incumbent is the last step's, whose probes are reused) and one for the
    step (none when that step was already simulated); stops early if the
    budget runs out (the runner raises).
    """
    p = run.p
    lo, hi = p.supply_bounds[:, 0], p.supply_bounds[:, 1]
    width = hi - lo
    center = run.best
    theta = center.theta.copy()
    z0 = run.targets.standardized(center.sim())
    s.supply_k += 1
    t_start = run.best.objective
    if s.supply_centre is center:  # an evaluation's OD and parameters never change
        _supply_step_from(run, s, center, z0, s.supply_jac, t_start)
        return
    jac = np.zeros((len(z0), len(theta)))
    for i in range(len(theta)):
        # towards less congestion, unless that side's bound is too near
        h = SUPPLY_PROBE * width[i] * relieving_direction(p.supply_names[i])
        if not lo[i] <= theta[i] + h <= hi[i]:
            h = -h
        probe = theta.copy()
        probe[i] += h
        ev = run(center.x, f"s{s.supply_k}.{p.supply_names[i]}", theta=probe,
                 info={"supply_step": s.supply_k, "probe": p.supply_names[i]})
        jac[:, i] = (run.targets.standardized(ev.sim(), slope=center.sim()) - z0) / h
    s.supply_centre, s.supply_jac, s.supply_steps = center, jac, []
    _supply_step_from(run, s, center, z0, jac, t_start)


def _supply_step_from(run, s: _State, center, z0: np.ndarray, jac: np.ndarray,
                      t_start: float) -> None:
    """The Gauss-Newton step of :func:`supply_step` from `center` with the
    Jacobian `jac`, simulated unless it was already (then it counts as failed)."""
    p = run.p
    lo, hi = p.supply_bounds[:, 0], p.supply_bounds[:, 1]
    width = hi - lo
    theta = center.theta
    # a probe that drew better than the centre does not replace the step: its gain is
    # one draw's, often inside the noise, and the step uses what every probe measured
    step = _gauss_newton(z0, jac, theta, lo, hi, s.supply_radius * width)
    tried = any(np.allclose(step, t, rtol=0.0, atol=1e-9 * float(width.max()))
                for t in s.supply_steps)
    if tried or not np.any(np.abs(step) > 1e-9 * width):
        s.supply_failed = True
        if tried:
            s.supply_radius *= 0.5
            log.info("supply step %d: the same step as before from the same incumbent; "
                     "not simulated again", s.supply_k)
        return
    s.supply_steps.append(step)
    ev = run(center.x, f"s{s.supply_k}", theta=theta + step,
             info={"supply_step": s.supply_k, "radius": s.supply_radius})
    if ev.objective < t_start:
        s.supply_failed = False
        s.supply_radius = min(1.0, 2 * s.supply_radius)
    else:
        s.supply_failed = True
        s.supply_radius *= 0.5
    log.info("supply step %d: %s -> J %.4g", s.supply_k,
             ", ".join(f"{n} {v:.3g}" for n, v in zip(p.supply_names, theta + step,
                                                        strict=True)), ev.objective)


def _gauss_newton(z0: np.ndarray, jac: np.ndarray, theta: np.ndarray, lo: np.ndarray,
                  hi: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """The step minimising ``|z0 + J d|²`` within the bounds and the trust region."""
    lower = np.maximum(lo - theta, -radius)
    upper = np.minimum(hi - theta, radius)
    if not np.all(upper > lower):
        return np.zeros_like(theta)
    res = lsq_linear(jac, -z0, bounds=(lower, upper))
    return np.clip(res.x, lower, upper)


def run_spsa(run, seed: int) -> str:
    """SPSA on the OD rows and the supply parameters together."""
    p = run.p
    n = len(p.x0)
    lo, hi = p.supply_bounds[:, 0], p.supply_bounds[:, 1]
    start = np.concatenate([p.x0, run.best.theta])
    scale = np.concatenate([run.targets.scale, np.maximum(hi - lo, 1e-9)])
    lower = np.concatenate([np.zeros(n), lo])
    upper = np.concatenate([np.full(n, np.inf), hi])
    spent = len(run.history) - 1  # simulations besides the start (the replicate)
    spsa(lambda z, tag: run(z[:n], tag, theta=z[n:]).objective, start, run.budget - spent,
         scale=scale, seed=seed, lower=lower, upper=upper)
    return "budget spent"


__all__ = ["FINAL_CHECKS", "LEVEL_GAIN", "LEVEL_PATIENCE", "QUIET_ROUNDS", "RADIUS",
           "model_around", "run_metamodel", "run_spsa", "supply_step"]

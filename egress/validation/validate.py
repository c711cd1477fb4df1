"""A finished run against a real observations file (what ``egress validate`` runs)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..calibration.observations import Observations, read_observations
from ..calibration.products import Selection
from ..engine.config import configured_network
from ..engine.outputs import read_edgedata
from ..engine.run import read_state
from ..errors import InputError
from ..files import atomic_csv, atomic_json
from ..network import read_net
from .compare import compare
from .figures import plot_speed_scatter
from .metrics import by_class, fit_statistics

log = logging.getLogger(__name__)


@dataclass
class Validation:
    """A run compared with real observations.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per observation (:func:`egress.validation.compare.compare`).
    statistics : dict
        :func:`egress.validation.metrics.fit_statistics` over the chosen hours.
    classes : pandas.DataFrame
        Mean speeds by road class over the chosen hours.
    dropped : int
        Observation rows that could not be matched onto the network.
    files : dict
    """

    table: pd.DataFrame
    statistics: dict
    classes: pd.DataFrame
    dropped: int = 0
    files: dict[str, Path] = field(default_factory=dict)


def validate(run: str | Path, observations: str | Path, *,
             hours: Iterable[int] | str | None = None, out: str | Path | None = None,
             figures: bool = True, strict: bool = False) -> Validation:
    """Compare a finished run with real observations.

    Parameters
    ----------
    run : str or pathlib.Path
        A run folder (``egress simulate``), complete and valid.
    observations : str or pathlib.Path
        Observations table (CSV or Parquet), e.g. from ``egress observations
        import-probe-speeds``; rows outside the run's window are left out,
        segments off the network dropped with a warning (unless `strict`).
    hours : iterable of int or str, optional
        The start hours the statistics cover (e.g. ``range(21, 23)`` or
        ``"21-22"`` for 21:00-23:00); the table keeps every row.
    out : str or pathlib.Path, optional
        Folder for ``validation.csv``, ``validation.json`` and
        ``validation.png`` (default: the run folder).
    figures : bool
    strict : bool
        Segments that cannot be matched are errors.

    Returns
    -------
    Validation

    Raises
    ------
    InputError
        If the run is missing, unfinished or invalid, or no observation lies
        in its window.
    """
    run = Path(run)
    state = read_state(run)
    if state is None or state.get("state") != "complete":
        what = "no run" if state is None else f"a run in state {state.get('state')!r}"
        raise InputError(str(run), f"holds {what}; validate needs a complete, valid run")
    try:
        net = read_net(configured_network(run))
    except (FileNotFoundError, OSError) as exc:
        raise InputError(str(run), f"its network cannot be found ({exc})") from None
    begin, end = float(state["begin"]), float(state["end"])
    obs = read_observations(observations, net, strict=strict)
    inside = (obs.table["begin"] >= begin) & (obs.table["end"] <= end)
    if not inside.any():
        raise InputError(str(observations), f"no row lies in the run's window "
                         f"({begin:g}-{end:g} s)")
    obs = Observations(obs.table[inside].reset_index(drop=True), obs.source, obs.matches)
    table = compare(read_edgedata(run / "edgedata.xml"), obs, net)
    if isinstance(hours, str):
        hours = Selection.parse(hours=hours).hours
    hours = None if hours is None else sorted(set(hours))
    stats = fit_statistics(table, hours=hours)
    classes = by_class(table, hours=hours)
    result = Validation(table, stats, classes, dropped=len(obs.dropped))
    out = run if out is None else Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result.files["table"] = atomic_csv(table, out / "validation.csv")
    result.files["statistics"] = atomic_json(out / "validation.json", {
        "run": str(run.resolve()), "observations": str(Path(observations).resolve()),
        "hours": hours, "dropped_rows": result.dropped, **stats,
        "classes": classes.to_dict("records")})
    if figures:
        result.files["scatter"] = plot_speed_scatter({state.get("name", run.name): table},
                                                     out / "validation.png", hours=hours)
    return result


def format_validation(v: Validation) -> str:
    """A few lines for the terminal."""
    s = v.statistics
    lines = [f"speeds: {s['speed_rows']} rows, RMSE {s['rmse_kmh']:.1f} km/h, "
             f"R² {s['r2']:.2f}, bias {s['bias_kmh']:+.1f} km/h"]
    for row in v.classes.itertuples():
        lines.append(f"  {row.road_class}: observed {row.observed_kmh:.1f}, simulated "
                     f"{row.simulated_kmh:.1f} km/h ({row.error:+.0%}, {row.rows} rows)")
    if s["count_rows"]:
        lines.append(f"counts: {s['count_rows']} hourly flows, GEH < 5 on "
                     f"{s['geh_share']:.0%}")
    if v.dropped:
        lines.append(f"{v.dropped} observation rows could not be matched (see the warnings)")
    return "\n".join(lines)


__all__ = ["Validation", "format_validation", "validate"]

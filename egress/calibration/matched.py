"""Observed segments given by coordinates on the model's roads: the matching report.

An observations row that gives its segment by WGS84 end points is map-matched
(:func:`egress.network.matching.match_part`). Real products hold segments that
run past the model's edge or along roads it lacks, and segments that run side
by side on one carriageway; so, unless the reading is strict:

* a row whose segment cannot be matched, or whose matched share is below
  :data:`egress.network.matching.MIN_SHARE`, is **dropped**, with one warning
  line naming the row, its segment and why;
* rows that match the **same edges in the same interval** (e.g. NPMRDS's
  ``I-5`` and ``I-5 N`` TMCs, which share their end points) are **merged**
  into one row (:func:`merge_rows`), with one warning line: the model cannot
  tell them apart, and keeping both would count one measurement twice.

Every coordinate row is listed in the matching report
(:attr:`egress.calibration.observations.Observations.matches`, columns
:data:`REPORT_COLUMNS`), which :func:`write_matched_segments` writes as
``matched_segments.csv`` with a map (``matched_segments.png``) of each
observed segment (a line between its end points) against its matched edges,
over the network.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..files import atomic_csv
from ..network import read_net
from ..network.matching import SegmentMatch, match_part

if TYPE_CHECKING:  # pragma: no cover
    from .observations import Observations

#: Columns of the matching report, one row per observations row given by coordinates:
#: ``row`` its CSV line (header = line 1), ``segment`` its label, the end points,
#: ``segment_length_m`` (the product's, else the straight distance), ``edges`` (space
#: separated; for a dropped row the refused match, if any), ``d_start_m``, ``d_end_m``
#: (distances of the matched part's ends from the edges), ``driven_m`` (along the
#: edges), ``share`` (driven / segment length), ``clipped_start_m``, ``clipped_end_m``
#: (segment before and after the matched part, off the model's roads), ``status``
#: (``kept``, ``merged`` or ``dropped``), ``why`` (for a dropped row) and
#: ``merged_with`` (the lines merged with it).
REPORT_COLUMNS = ["row", "segment", "start_lon", "start_lat", "end_lon", "end_lat",
                  "segment_length_m", "edges", "d_start_m", "d_end_m", "driven_m", "share",
                  "clipped_start_m", "clipped_end_m", "status", "why", "merged_with"]


class Matcher:
    """Matches coordinate rows (each distinct segment once) and keeps the report."""

    def __init__(self, net):
        self.net = net
        self._cache: dict[tuple, SegmentMatch] = {}
        self.report: list[dict] = []

    def match(self, line: int, label: str, points: list[float], length: float | None,
              road: str | None = None) -> SegmentMatch:
        """Match the segment of CSV line `line` and add its row to the report."""
        key = (*points, length, road)
        if key not in self._cache:
            self._cache[key] = match_part(self.net, (points[0], points[1]),
                                          (points[2], points[3]), length=length, road=road)
        m = self._cache[key]
        self.report.append({
            "row": line, "segment": label, "start_lon": points[0], "start_lat": points[1],
            "end_lon": points[2], "end_lat": points[3], "segment_length_m": m.length,
            "edges": " ".join(m.edges), "d_start_m": m.d_start, "d_end_m": m.d_end,
            "driven_m": m.driven, "share": m.share, "clipped_start_m": m.clipped_start,
            "clipped_end_m": m.clipped_end, "status": "kept" if m.ok else "dropped",
            "why": m.why, "merged_with": ""})
        return m

    def merged(self, lines: list[int]) -> None:
        """Mark the report rows of CSV `lines` as merged with each other."""
        for r in self.report:
            if r["row"] in lines:
                r["status"] = "merged"
                r["merged_with"] = " ".join(str(x) for x in lines if x != r["row"])

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.report, columns=REPORT_COLUMNS)


def merge_rows(rows: list[dict], quantities) -> dict:
    """One row standing for `rows`, which observe the same edges and interval.

    Each quantity's value is the mean of the rows that observe it, and its sd
    ``sqrt(mean(sd²) + mean((v - mean)²))``: the spread of picking one of the
    rows at random (their own noise plus their disagreement). The rows are
    not treated as independent measurements, whose combined sd would shrink
    by √n: two probe segments on one carriageway see the same evenings'
    traffic, and their difference says how unsure it is which one the edges
    stand for. Weight and matched share are means, ``days`` the fewest, the
    label joins the rows' labels with ``" & "``.

    Parameters
    ----------
    rows : list of dict
        Clean rows (standard deviations filled).
    quantities : iterable of str
    """
    out = dict(rows[0])
    for kind in quantities:
        have = [r for r in rows if not math.isnan(r[kind])]
        if not have:
            continue
        v = np.array([r[kind] for r in have])
        sd = np.array([r[f"{kind}_sd"] for r in have])
        out[kind] = float(v.mean())
        out[f"{kind}_sd"] = float(np.sqrt(np.mean(sd ** 2) + np.mean((v - v.mean()) ** 2)))
    out["segment"] = " & ".join(dict.fromkeys(r["segment"] for r in rows))
    out["weight"] = float(np.mean([r["weight"] for r in rows]))
    for col, how in (("matched_share", np.nanmean), ("segment_length", np.nanmean),
                     ("days", np.nanmin)):
        vals = np.array([r.get(col, math.nan) for r in rows], dtype=float)
        out[col] = float(how(vals)) if np.isfinite(vals).any() else math.nan
    for col in ("road", "direction"):
        out[col] = " / ".join(dict.fromkeys(r.get(col) or "" for r in rows if r.get(col)))
    return out


def write_matched_segments(obs: Observations, net, out: str | Path, *,
                           figure: bool = True) -> dict[str, Path]:
    """Write the matching report of `obs` as ``matched_segments.csv`` and its map.

    Parameters
    ----------
    obs : Observations
        As read (its ``matches`` hold the report).
    net : sumolib.net.Net or path
        The network the observations were matched on.
    out : str or pathlib.Path
        Folder to write to (created if need be).
    figure : bool
        Also draw ``matched_segments.png`` (when any row is given by coordinates).

    Returns
    -------
    dict
        ``{"table": path}`` and, with a figure, ``"map": path``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = obs.matches if len(obs.matches) else pd.DataFrame(columns=REPORT_COLUMNS)
    files = {"table": atomic_csv(report, out / "matched_segments.csv")}
    if figure and len(report):
        files["map"] = plot_matched_segments(obs, net, out / "matched_segments.png")
    return files


_STYLE = {"kept": ("tab:blue", "-"), "merged": ("tab:purple", "-"),
          "dropped": ("tab:red", "--")}


def plot_matched_segments(obs: Observations, net, path: str | Path) -> Path:
    """Map of each observed segment (a line between its end points, coloured by
    kept / merged / dropped) against its matched edges, over the network."""
    import matplotlib.pyplot as plt

    if not hasattr(net, "getEdge"):
        net = read_net(net)
    report = obs.matches.drop_duplicates(["segment", "start_lon", "start_lat", "end_lon",
                                          "end_lat", "status"])
    fig, ax = plt.subplots(figsize=(9, 9))
    for edge in net.getEdges():
        if edge.getFunction() != "internal":
            xy = np.array([p[:2] for p in edge.getShape()])
            ax.plot(xy[:, 0], xy[:, 1], color="0.8", lw=0.6, zorder=1)
    drawn: set[str] = set()
    for r in report.itertuples():
        for eid in str(r.edges).split() if r.status != "dropped" else ():
            if eid in drawn or not net.hasEdge(eid):
                continue
            drawn.add(eid)
            xy = np.array([p[:2] for p in net.getEdge(eid).getShape()])
            ax.plot(xy[:, 0], xy[:, 1], color="tab:orange", lw=4, alpha=0.6, zorder=2)
        ends = _xy(net, r.start_lon, r.start_lat), _xy(net, r.end_lon, r.end_lat)
        if None in ends:
            continue  # a network without a geo projection: nothing to draw them on
        (x1, y1), (x2, y2) = ends
        color, style = _STYLE.get(r.status, ("k", ":"))
        ax.annotate("", (x2, y2), (x1, y1), zorder=3, arrowprops={
            "arrowstyle": "->", "color": color, "linestyle": style, "lw": 1.2})
        ax.plot([x1], [y1], "o", color=color, ms=2.5, zorder=3)
        if r.status == "dropped":
            ax.text((x1 + x2) / 2, (y1 + y2) / 2, str(r.segment), fontsize=6, color=color,
                    zorder=4)
    rows = obs.matches["status"].value_counts()
    for status, (color, style) in _STYLE.items():
        ax.plot([], [], color=color, ls=style,
                label=f"observed segment, {status} ({rows.get(status, 0)} rows)")
    ax.plot([], [], color="tab:orange", lw=4, alpha=0.6, label="matched edges")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"{Path(obs.source).name}: observed segments and the edges they match")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return Path(path)


def _xy(net, lon: float, lat: float) -> tuple[float, float] | None:
    try:
        x, y = net.convertLonLat2XY(lon, lat)
    except Exception:  # no projection (or pyproj) to place lon/lat on the network
        return None
    return float(x), float(y)



__all__ = ["REPORT_COLUMNS", "Matcher", "merge_rows", "plot_matched_segments",
           "write_matched_segments"]

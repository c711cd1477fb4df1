"""Seattle SODO, May 2018: which evenings are normal, which are not, how much normal ones vary.

Reads the real observations in ``scenarios/observations/seattle-2018/`` (NPMRDS hourly probe
speeds per TMC segment, WSDOT loop volumes) and prints, for the evenings (17:00-24:00):

1. mean speeds per night and hour by group: freeway TMCs (I-5, I-5 N, WA-99 = SR 99, I-90),
   arterial TMCs (the rest), arterials within 0.8 km of a stadium, I-5 and SR 99 by direction;
2. each night's anomaly per group and hour: the mean over the group's TMCs of the speed minus
   that TMC's mean on the other nine nights (km/h), with its robust z-score against the same
   anomaly on the other nine nights (median, 1.4826 x MAD, scale at least 1 km/h). A cell is
   flagged when z <= -3 and the drop is at least 5 km/h; an evening is abnormal when the
   freeway or arterial group is flagged at 21-23h;
3. probe coverage: how many arterial TMCs have data per night and hour (a proxy of activity);
4. the loop volumes per night and hour (I-5 and SR 99 general-purpose mainline, the I-5 SB
   exit ramp 005es16583_MS_X with its speed), with z-scores against the other Tue-Thu nights;
5. what happened on each night (events and road works; sources in the data README), and for
   the abnormal and game nights the drop against the normal-night mean, by group and by
   segment (with the distance to the nearer stadium);
6. the day-to-day spread on the normal nights: per-TMC standard deviation of the hourly speed
   at 21:00, 22:00 and 23:00 (median and rms over TMCs, by road class);
7. the mean of the normal nights per TMC and hour, and of the loop volumes;
8. the 3/3 splits of the normal nights for cross-validation, and the recommended one.

Pandas only; runs in a second or two.

Usage: python bench/seattle_evenings.py [--data DIR] [--normal 2018-05-07,...]
"""

from __future__ import annotations

import argparse
import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "scenarios" / "observations" / "seattle-2018"

#: The normal weekday nights named in the issue "Seattle for real"; section 2 checks them.
NORMAL = ("2018-05-07", "2018-05-08", "2018-05-09", "2018-05-10", "2018-05-14", "2018-05-16")
#: Recommended 3/3 split of NORMAL for cross-validation (section 8 explains the choice).
CALIBRATION = ("2018-05-09", "2018-05-10", "2018-05-14")
VALIDATION = ("2018-05-07", "2018-05-08", "2018-05-16")
FREEWAY_ROADS = ("I-5", "I-5 N", "WA-99", "I-90")
EVENING = tuple(range(17, 24))
WINDOW = (21, 22, 23)
Z_FLAG = -3.0
MIN_DROP = 5.0
#: Stadiums (lat, lon): T-Mobile Park (Safeco Field in 2018), Lumen Field (CenturyLink Field).
STADIUMS = {"Safeco Field": (47.5914, -122.3325), "CenturyLink Field": (47.5952, -122.3316)}
#: Arterial TMCs whose midpoint lies within this distance of a stadium form their own group.
NEAR_KM = 0.8
GROUPS = ("freeway", "arterial", "arterial near stadiums", "I-5", "I-5 NB", "I-5 SB",
          "SR 99 NB", "SR 99 SB")
#: What happened on the nights of the data set (sources in the data README).
EVENTS = {
    "2018-05-07": "no Mariners game found (between the Angels home series and Toronto)",
    "2018-05-08": "Mariners at Toronto",
    "2018-05-09": "Mariners at Toronto; Sounders at Toronto",
    "2018-05-10": "Mariners at Toronto",
    "2018-05-11": "Mariners at Detroit (postponed); Revive I-5 works from 8 p.m.: NB I-5 down "
                  "to two lanes Michigan St-Olive Way, NB ramps closed (Dearborn on, Edgar "
                  "Martinez Dr off, I-90 to NB I-5, Seneca off, University on)",
    "2018-05-14": "Mariners at Minnesota",
    "2018-05-15": "Mariners-Rangers at Safeco Field, night game, 9-8 in 11 innings lasting "
                  "nearly 4.5 h (attendance not found)",
    "2018-05-16": "Mariners-Rangers at Safeco Field, afternoon game (over before the evening)",
    "2018-05-17": "Mariners-Tigers at Safeco Field, 7:10 p.m., attendance 15,169",
    "2018-05-18": "Mariners-Tigers at Safeco Field, night game, attendance 34,932; Revive I-5 "
                  "works from 8 p.m.: NB I-5 down to two lanes Michigan St-SR 520, NB ramps "
                  "closed (Dearborn on, Seneca off, University on)",
}
#: Nights with a Mariners night game at Safeco Field.
GAME_NIGHTS = ("2018-05-15", "2018-05-17", "2018-05-18")


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance in km (equirectangular approximation; fine over a few km)."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return 6371.0 * math.hypot(x, y)


def load(data: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read the three CSVs and classify the TMCs.

    Parameters
    ----------
    data : Path
        Folder with ``tmc.csv``, ``npmrds_hourly.csv`` and ``loops.csv``.

    Returns
    -------
    tmc, speeds, loops : pandas.DataFrame
        ``tmc`` and ``speeds`` carry the road class ``cls`` (freeway/arterial), the
        direction group ``group`` (e.g. "I-5 NB"; "arterial" for arterials), ``near``
        (arterial within ``NEAR_KM`` of a stadium), ``stadium_km`` and a ``label``;
        ``loops`` carries ``section`` (road, direction and lane set).
    """
    tmc = pd.read_csv(data / "tmc.csv")
    tmc["cls"] = np.where(tmc["road"].isin(FREEWAY_ROADS), "freeway", "arterial")
    road = tmc["road"].replace({"I-5 N": "I-5", "WA-99": "SR 99"})
    tmc["group"] = np.where(tmc["cls"] == "freeway",
                            road + " " + tmc["direction"].str[0] + "B", "arterial")
    mid_lat = (tmc["start_lat"] + tmc["end_lat"]) / 2
    mid_lon = (tmc["start_lon"] + tmc["end_lon"]) / 2
    tmc["stadium_km"] = [min(_km(a, b, *s) for s in STADIUMS.values())
                         for a, b in zip(mid_lat, mid_lon, strict=True)]
    tmc["near"] = (tmc["cls"] == "arterial") & (tmc["stadium_km"] <= NEAR_KM)
    tmc["label"] = (tmc["tmc"] + " " + tmc["road"] + " " + tmc["direction"].str[0] + "B @ "
                    + tmc["intersection"].str.slice(0, 26))
    speeds = pd.read_csv(data / "npmrds_hourly.csv").merge(
        tmc[["tmc", "cls", "group", "near", "stadium_km", "label"]], on="tmc",
        validate="many_to_one")
    loops = pd.read_csv(data / "loops.csv")
    ramp = loops["station"] == "005es16583_MS_X"
    loops["section"] = np.where(ramp, "I-5 SB exit MP 165.83",
                                loops["road"] + " " + loops["direction"] + " GP")
    return tmc, speeds, loops


def members(frame: pd.DataFrame, group: str) -> pd.Series:
    """Boolean mask of the rows of ``frame`` (with TMC columns) that belong to ``group``."""
    if group in ("freeway", "arterial"):
        return frame["cls"] == group
    if group == "arterial near stadiums":
        return frame["near"].astype(bool)
    if group == "I-5":
        return frame["group"].str.startswith("I-5 ")
    return frame["group"] == group


def matrix(speeds: pd.DataFrame, hours: tuple[int, ...]) -> pd.DataFrame:
    """Speeds as a (tmc, hour) x date matrix for the given hours."""
    sel = speeds[speeds["hour"].isin(hours)]
    return sel.pivot_table(index=["tmc", "hour"], columns="date", values="speed_kmh")


def loo_mean(mat: pd.DataFrame, min_others: int = 4) -> pd.DataFrame:
    """Mean of each row over the other columns (NaN with fewer than ``min_others`` values)."""
    values = mat.to_numpy()
    present = ~np.isnan(values)
    others = present.sum(axis=1, keepdims=True) - present
    sums = np.nansum(values, axis=1, keepdims=True) - np.where(present, values, 0.0)
    out = np.where(others >= min_others, sums / np.maximum(others, 1), np.nan)
    return pd.DataFrame(out, index=mat.index, columns=mat.columns)


def robust_loo_z(table: pd.DataFrame, floor: float) -> pd.DataFrame:
    """Robust leave-one-out z-score of every cell against the other cells of its row.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows: a quantity (e.g. a group and hour); columns: the nights.
    floor : float
        Smallest scale, in the table's unit (guards against a near-zero MAD).

    Returns
    -------
    pandas.DataFrame
        ``(x - median(others)) / max(1.4826 * MAD(others), floor)``.
    """
    z = pd.DataFrame(np.nan, index=table.index, columns=table.columns)
    for col in table.columns:
        others = table.drop(columns=col)
        med = others.median(axis=1)
        mad = others.sub(med, axis=0).abs().median(axis=1) * 1.4826
        z[col] = (table[col] - med) / mad.clip(lower=floor)
    return z


def group_means(speeds: pd.DataFrame, dev: pd.DataFrame) -> pd.DataFrame:
    """Mean of ``dev`` ((tmc, hour) x date) over each group's TMCs: (group, hour) x date."""
    info = speeds.drop_duplicates("tmc").set_index("tmc")
    rows = info.loc[dev.index.get_level_values("tmc")]
    parts = []
    for name in GROUPS:
        part = dev[members(rows, name).to_numpy()].groupby(level="hour").mean()
        part.index = pd.MultiIndex.from_product([[name], part.index], names=["group", "hour"])
        parts.append(part)
    return pd.concat(parts)


def _day(d: str) -> str:
    return pd.Timestamp(d).strftime("%a %d")


def _days(dates) -> list[str]:
    return [_day(d) for d in dates]


def _fmt(df: pd.DataFrame, digits: int = 1) -> str:
    return df.round(digits).to_string(na_rep="-")


def section_means(speeds: pd.DataFrame, normal: tuple[str, ...]) -> None:
    """Section 1: plain mean speed per night, group and evening hour."""
    print("\n== 1. Evening mean speed per night (km/h): plain mean over the group's TMCs with "
          "data; 'normal' = mean of the normal nights' rows ==")
    for name in GROUPS:
        sel = speeds[members(speeds, name) & speeds["hour"].isin(EVENING)]
        tab = sel.pivot_table(index="date", columns="hour", values="speed_kmh", aggfunc="mean")
        tab.loc["normal"] = tab.loc[[d for d in normal if d in tab.index]].mean()
        count = sel.groupby("date")["tmc"].nunique().reindex(tab.index)
        tab.index = [_day(d) if d != "normal" else d for d in tab.index]
        text = _fmt(tab).splitlines()
        print(f"-- {name}")
        print(text[0] + "  TMCs")
        for line, n in zip(text[1:], count, strict=True):
            print(line + ("" if pd.isna(n) else f"  {int(n):4d}"))


def section_anomalies(speeds: pd.DataFrame, normal: tuple[str, ...]) -> list[str]:
    """Section 2: leave-one-out anomalies and robust z; return the abnormal evenings."""
    mat = matrix(speeds, EVENING)
    anom = group_means(speeds, mat - loo_mean(mat))
    z = robust_loo_z(anom, floor=1.0)
    print("\n== 2. Anomaly per night: mean over the group's TMCs of (speed - the TMC's mean "
          "on the other nine nights), km/h; [z] = robust leave-one-out z ==")
    for name in GROUPS:
        tab = anom.loc[name].T.round(1).astype(str) + " [" + z.loc[name].T.round(0).astype(
            "Int64").astype(str) + "]"
        tab = tab.where(anom.loc[name].T.notna(), "-")
        tab.index = _days(tab.index)
        print(f"-- {name}")
        print(tab.to_string())
    mat_w = matrix(speeds, WINDOW)
    dev_w = (mat_w - loo_mean(mat_w)).groupby(level="tmc").mean()
    dev_w.index = pd.MultiIndex.from_product([dev_w.index, [0]], names=["tmc", "hour"])
    win = group_means(speeds, dev_w).droplevel("hour")
    zw = robust_loo_z(win, floor=1.0)
    tab = win.round(1).astype(str) + " [" + zw.round(0).astype("Int64").astype(str) + "]"
    tab = tab.where(win.notna(), "-").T
    tab.index = _days(tab.index)
    print("-- 21-23h together (per TMC the mean over the hours with data, then as above)")
    print(tab.to_string())

    hit = (z <= Z_FLAG) & (anom <= -MIN_DROP)
    cells = hit.stack()
    cells = cells[cells].index
    print(f"\n-- flagged cells (z <= {Z_FLAG:g} and a drop >= {MIN_DROP:g} km/h)")
    for date in sorted({c[2] for c in cells}):
        part = [c for c in cells if c[2] == date]
        text = ", ".join(f"{g} {h}h {anom.loc[(g, h), date]:+.1f} (z {z.loc[(g, h), date]:.1f})"
                         for g, h, _ in part)
        print(f"{_day(date)}: {text}")
    abnormal = sorted({d for g, h, d in cells if g in ("freeway", "arterial") and h in WINDOW})
    suspect = sorted({d for g, h, d in cells} - set(abnormal))
    print("abnormal evenings (freeway or arterial flagged at 21-23h): "
          + ", ".join(_days(abnormal)))
    print(f"flagged elsewhere only (a direction, or before 21h): {', '.join(_days(suspect))}")
    bad = [d for d in normal if d in abnormal]
    print(f"normal nights among the abnormal evenings: {', '.join(_days(bad)) or 'none'}")
    return abnormal


def section_coverage(speeds: pd.DataFrame) -> None:
    """Section 3: number of arterial TMCs with probe data per night and hour."""
    sel = speeds[(speeds["cls"] == "arterial") & speeds["hour"].isin(EVENING)]
    tab = sel.pivot_table(index="date", columns="hour", values="tmc", aggfunc="count")
    z = robust_loo_z(tab.T.astype(float), floor=1.0).T
    print("\n== 3. Probe coverage: arterial TMCs with data (30 have any), per night and hour; "
          "NPMRDS leaves out an hour in which no probe drove the segment ==")
    shown = tab.copy()
    shown.index = _days(shown.index)
    print(_fmt(shown, 0))
    flags = [f"{_day(d)} {h}h {tab.loc[d, h]} (z {v:+.1f})" for (d, h), v in z.stack().items()
             if v >= 3]
    print("robust leave-one-out z >= 3: " + (", ".join(flags) if flags else "none"))


def section_loops(loops: pd.DataFrame) -> None:
    """Section 4: evening loop volumes per night with leave-one-out z-scores."""
    sec = loops[loops["hour"].isin(EVENING)]
    vol = sec.groupby(["section", "hour", "date"])["volume"].mean().unstack("date")
    print("\n== 4. Loop volumes, veh/h (GP = general-purpose mainline, mean over the section's "
          "milepost points; Tue-Thu only) ==")
    for name in vol.index.get_level_values("section").unique():
        tab = vol.loc[name].T
        tab.index = _days(tab.index)
        print(f"-- {name}")
        print(_fmt(tab, 0))
    speed = sec[sec["speed_kmh"].notna()].pivot_table(index="date", columns="hour",
                                                      values="speed_kmh")
    speed.index = _days(speed.index)
    print("-- I-5 SB exit MP 165.83, speed km/h (96.6 = the export's 60 mph ceiling)")
    print(_fmt(speed, 0))
    z = pd.DataFrame(np.nan, index=vol.index, columns=vol.columns)
    for col in vol.columns:
        others = vol.drop(columns=col)
        z[col] = (vol[col] - others.mean(axis=1)) / others.std(axis=1, ddof=1)
    print("-- |z| >= 3 against the other five Tue-Thu nights (mean, sd), hours 19-23:")
    for (name, hour, date), value in z.stack().items():
        if abs(value) < 3 or hour < 19:
            continue
        here = vol.loc[(name, hour), date]
        ref = vol.loc[(name, hour)].drop(date).mean()
        print(f"{_day(date)} {name} {hour}h: {here:.0f} veh/h vs {ref:.0f} "
              f"({100 * (here / ref - 1):+.0f}%), z {value:+.1f}")


def section_events(speeds: pd.DataFrame, normal: tuple[str, ...], abnormal: list[str],
                   loops: pd.DataFrame | None = None) -> None:
    """Section 5: events per night; drops against the normal-night mean on the notable nights."""
    print("\n== 5. What happened (sources in the data README) ==")
    for date in sorted(speeds["date"].unique()):
        mark = "normal" if date in normal else ("ABNORMAL" if date in abnormal else "")
        print(f"{_day(date)} {mark:8s} {EVENTS.get(date, '-')}")
    hours = (20, 21, 22, 23)
    mat = matrix(speeds, hours)
    ref = mat[[d for d in normal if d in mat.columns]].mean(axis=1)
    nights = sorted(set(abnormal) | set(GAME_NIGHTS))
    dev = mat[nights].sub(ref, axis=0)
    drop = group_means(speeds, dev)
    print("\n-- drop against the normal-night mean: mean over the group's TMCs with data of "
          "(speed - the TMC's normal mean), km/h")
    for date in nights:
        tab = drop[date].unstack("hour")
        tab["21-23"] = tab[list(WINDOW)].mean(axis=1)
        print(f"{_day(date)}")
        print(_fmt(tab.rename(columns=lambda h: f"{h}h" if isinstance(h, int) else h)))
    if loops is not None:
        base = [d for d in normal if d in set(loops["date"])]
        games = [d for d in nights if d in set(loops["date"])]
        sec = loops[loops["hour"].isin(hours)]
        vol = sec.groupby(["section", "hour", "date"])["volume"].mean().unstack("date")
        extra = vol[games].sub(vol[base].mean(axis=1), axis=0)
        print(f"\n-- loop volume minus the normal Tue-Thu mean ({', '.join(_days(base))}), veh/h")
        for date in games:
            tab = extra[date].unstack("hour").rename(columns=lambda h: f"{h}h")
            print(f"{_day(date)}")
            print(_fmt(tab, 0))
    info = speeds.drop_duplicates("tmc").set_index("tmc")
    print("\n-- segments: speed - normal-night mean (km/h) where it differs by >= 10 km/h in "
          "some hour 20-23")
    for date in nights:
        one = dev[date].unstack("hour")
        keep = one[(one.abs() >= 10).any(axis=1)].join(info[["label", "cls", "stadium_km"]])
        keep["normal 22h"] = ref.unstack("hour").reindex(keep.index)[22]
        keep = keep.sort_values(["cls", "stadium_km"]).set_index("label")
        keep = keep.rename(columns={h: f"{h}h" for h in hours})
        print(f"{_day(date)}")
        print(_fmt(keep[[f"{h}h" for h in hours] + ["normal 22h", "stadium_km", "cls"]]))


def spread(speeds: pd.DataFrame, nights: tuple[str, ...],
           hours: tuple[int, ...] = WINDOW) -> pd.DataFrame:
    """Per TMC and hour: mean, sd (ddof=1) and number of the given nights with data."""
    mat = matrix(speeds, hours).reindex(columns=list(nights))
    out = pd.DataFrame({"mean": mat.mean(axis=1), "sd": mat.std(axis=1, ddof=1),
                        "n": mat.notna().sum(axis=1)})
    info = speeds.drop_duplicates("tmc").set_index("tmc")
    return out.join(info[["cls", "label"]], on="tmc")


def section_spread(speeds: pd.DataFrame, normal: tuple[str, ...]) -> pd.DataFrame:
    """Section 6: day-to-day spread of the normal nights."""
    sp = spread(speeds, normal)
    use = sp[sp["n"] >= 3]
    print(f"\n== 6. Day-to-day spread on the normal nights ({', '.join(_days(normal))}): "
          "per-TMC sd of the hourly speed (km/h), TMC-hours with >= 3 nights ==")
    rows = []
    for hour in (*WINDOW, None):
        for cls in ("all", "freeway", "arterial"):
            part = use if hour is None else use.xs(hour, level="hour")
            if cls != "all":
                part = part[part["cls"] == cls]
            rows.append({"hour": "21-23" if hour is None else hour, "class": cls,
                         "TMCs": len(part), "median sd": part["sd"].median(),
                         "rms sd": math.sqrt((part["sd"] ** 2).mean()),
                         "p90 sd": part["sd"].quantile(0.9),
                         "mean speed": part["mean"].mean()})
    print(pd.DataFrame(rows).round(1).to_string(index=False))
    two = sp[sp["n"] >= 2].xs(22, level="hour")
    print(f"(22h with >= 2 nights instead: {len(two)} TMCs, median sd {two['sd'].median():.1f}, "
          f"rms {math.sqrt((two['sd'] ** 2).mean()):.1f}; the sd of a mean of k nights is about "
          "sd / sqrt(k): k = 3 -> x 0.58, k = 6 -> x 0.41)")
    return sp


def section_normal_means(sp: pd.DataFrame, loops: pd.DataFrame,
                         normal: tuple[str, ...]) -> None:
    """Section 7: normal-night mean per TMC and hour, and of the loop volumes."""
    print("\n== 7. Mean of the normal nights per TMC and hour: mean (sd, nights) km/h ==")

    def cell(r: pd.Series) -> str:
        if r["n"] == 0:
            return "-"
        sd = f"{r['sd']:4.1f}" if r["n"] >= 2 else "   -"
        return f"{r['mean']:5.1f} ({sd},{int(r['n'])})"

    tab = sp.apply(cell, axis=1).unstack("hour").rename(columns=lambda h: f"{h}h")
    info = sp.reset_index().drop_duplicates("tmc").set_index("tmc")[["cls", "label"]]
    tab = tab.join(info).sort_values(["cls", "label"]).set_index(["cls", "label"])
    print(tab.to_string())
    nights = [d for d in normal if d in set(loops["date"])]
    sec = loops[loops["hour"].isin(range(19, 24)) & loops["date"].isin(nights)]
    print(f"\n-- loop volumes on the normal Tue-Thu nights ({', '.join(_days(nights))}): "
          "mean (sd) veh/h")
    vol = sec.groupby(["section", "hour", "date"])["volume"].mean().unstack("date")
    out = vol.mean(axis=1).round(0).astype(int).astype(str) + " (" + vol.std(
        axis=1, ddof=1).round(0).astype(int).astype(str) + ")"
    print(out.unstack("hour").rename(columns=lambda h: f"{h}h").to_string())
    point = sec[sec["lanes"] == "GP mainline"].groupby(["station", "hour", "date"])[
        "volume"].mean().unstack("date")
    print("-- per milepost point (mean of those nights), veh/h")
    print(_fmt(point.mean(axis=1).unstack("hour").rename(columns=lambda h: f"{h}h"), 0))


def section_splits(speeds: pd.DataFrame, loops: pd.DataFrame, normal: tuple[str, ...]) -> None:
    """Section 8: every 3/3 split of the normal nights and the recommended one."""
    mat = matrix(speeds, WINDOW)
    loop_nights = set(loops["date"])
    info = speeds.drop_duplicates("tmc").set_index("tmc")
    print("\n== 8. 3/3 splits of the normal nights: difference between the halves' per-TMC "
          "means at 21-23h (TMC-hours with >= 2 nights in each half), km/h ==")
    rows = []
    for half in itertools.combinations(normal, 3):
        if normal[0] not in half:
            continue
        other = tuple(d for d in normal if d not in half)
        a, b = mat.reindex(columns=list(half)), mat.reindex(columns=list(other))
        ok = (a.notna().sum(axis=1) >= 2) & (b.notna().sum(axis=1) >= 2)
        diff = (a.mean(axis=1) - b.mean(axis=1))[ok]
        fw = info.loc[diff.index.get_level_values("tmc"), "cls"].to_numpy() == "freeway"
        weeks = [{pd.Timestamp(d).isocalendar().week for d in h} for h in (half, other)]
        mondays = [sum(pd.Timestamp(d).day_of_week == 0 for d in h) for h in (half, other)]
        n_loops = [sum(d in loop_nights for d in h) for h in (half, other)]
        balanced = all(len(w) == 2 for w in weeks) and mondays == [1, 1] and n_loops == [2, 2]
        rows.append({"half A": " ".join(_days(half)), "half B": " ".join(_days(other)),
                     "rms diff": math.sqrt((diff ** 2).mean()),
                     "freeway mean diff": diff[fw].mean(), "arterial mean diff": diff[~fw].mean(),
                     "loop nights A/B": f"{n_loops[0]}/{n_loops[1]}",
                     "balanced": "yes" if balanced else ""})
    print(pd.DataFrame(rows).round(2).to_string(index=False))
    sp = spread(speeds, normal)
    sd = math.sqrt((sp.loc[sp["n"] >= 3, "sd"] ** 2).mean())
    print("balanced = each half has one of the two Mondays (no loop data), two Tue-Thu nights "
          f"with loop volumes, and nights of both weeks; noise alone gives an rms diff of about "
          f"rms sd x sqrt(2/3) = {sd * math.sqrt(2 / 3):.1f} km/h")
    print(f"recommended: calibration {' '.join(_days(CALIBRATION))}, validation "
          f"{' '.join(_days(VALIDATION))}, then the reverse fold: the balanced split with three "
          "different weekdays in each half that puts Tue 08 (low volumes at 20-21h, slow "
          "freeways at 18h) on the validation side")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with the three CSVs")
    parser.add_argument("--normal", default=",".join(NORMAL),
                        help="comma-separated normal nights (default: the issue's six)")
    args = parser.parse_args()
    normal = tuple(args.normal.split(","))
    tmc, speeds, loops = load(args.data)
    nights = sorted(speeds["date"].unique())
    print(f"data: {args.data}")
    print(f"{len(tmc)} TMCs: {(tmc['cls'] == 'freeway').sum()} freeway, "
          f"{(tmc['cls'] == 'arterial').sum()} arterial ({int(tmc['near'].sum())} within "
          f"{NEAR_KM:g} km of a stadium); {(tmc['hours_with_data'] > 0).sum()} with data")
    print(f"nights: {', '.join(_days(nights))}; loops: "
          f"{', '.join(_days(sorted(loops['date'].unique())))}")
    print(f"normal nights: {', '.join(_days(normal))}")
    section_means(speeds, normal)
    abnormal = section_anomalies(speeds, normal)
    section_coverage(speeds)
    section_loops(loops)
    section_events(speeds, normal, abnormal, loops)
    sp = section_spread(speeds, normal)
    section_normal_means(sp, loops, normal)
    section_splits(speeds, loops, normal)


if __name__ == "__main__":
    main()

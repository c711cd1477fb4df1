"""Importers of real observation products, on the real Seattle May 2018 data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from egress.calibration.importers import (
    MIN_DAYS,
    SPEED_SD_FLOOR,
    STATION_SEGMENT,
    import_counts,
    import_probe_speeds,
)
from egress.calibration.observations import read_observations
from egress.calibration.products import Selection
from egress.cli import main
from egress.errors import InputError

DATA = ROOT / "scenarios" / "observations" / "seattle-2018"
TMC, NPMRDS, LOOPS = DATA / "tmc.csv", DATA / "npmrds_hourly.csv", DATA / "loops.csv"
#: The six normal nights of the data's README.
NORMAL = "2018-05-07,2018-05-08,2018-05-09,2018-05-10,2018-05-14,2018-05-16"


@pytest.fixture(scope="module")
def evening():
    return import_probe_speeds(TMC, NPMRDS, dates=NORMAL, hours="21-23")


def test_six_normal_nights_of_probe_speeds(evening):
    t = evening.table
    # every TMC-hour with data on a normal night (README: 46 TMCs with evening data)
    assert len(t) == 130 and t["segment"].nunique() == 46
    assert list(t["begin"].unique()) == ["21:00", "22:00", "23:00"]
    assert set(t["end"]) == {"22:00", "23:00", "24:00"}
    assert t["days"].max() == 6 and t["days"].min() == 1
    # the day-to-day spread the README reports: median sd about 6.6 km/h at 21-23 h
    assert 5.5 < t["speed_sd"].median() < 7.5
    assert (t["speed_sd"] >= SPEED_SD_FLOOR).all()
    assert {"segment", "road", "direction", "segment_length", "start_lon"} <= set(t.columns)
    # one TMC-hour by hand: mean and sample sd of its six nights
    raw = pd.read_csv(NPMRDS)
    days = raw[(raw["tmc"] == "114+04194") & (raw["hour"] == 22)
               & raw["date"].isin(NORMAL.split(","))]["speed_kmh"]
    row = t[(t["segment"] == "114+04194") & (t["begin"] == "22:00")].iloc[0]
    assert row["days"] == len(days) == 6
    assert row["speed"] == pytest.approx(days.mean(), abs=1e-3)
    assert row["speed_sd"] == pytest.approx(max(days.std(ddof=1), SPEED_SD_FLOOR), abs=1e-3)
    assert row["segment_length"] == pytest.approx(0.550202 * 1609.344, abs=0.1)
    # rows of few days carry at least the pooled sd of their segment or of all
    few = t[t["days"] < MIN_DAYS]
    assert len(few) and (few["speed_sd"] >= SPEED_SD_FLOOR).all()
    assert any("fewer than 3 days" in n for n in evening.notes)


def test_imported_speeds_read_on_the_sodo_network(evening, tmp_path):
    """Every TMC with data on a normal evening lies on a modelled road; the I-5 and
    I-5 N TMCs side by side (and two S Jackson St TMCs) merge."""
    path = evening.write(tmp_path / "observed.csv")
    obs = read_observations(path, ROOT / "networks" / "sodo" / "sodo.net.xml")
    status = obs.matches["status"].value_counts()
    assert status.get("dropped", 0) == 0
    assert len(obs.table) == 130 - status["merged"] // 2
    merged = set(obs.matches.loc[obs.matches["status"] == "merged", "segment"])
    assert {"114+04549", "114P04195", "114P04194", "114P04548"} <= merged
    assert obs.table["matched_share"].between(0.8, 1.25).all()


def test_units_from_names_or_flags(tmp_path):
    """mph and km/h, miles and km, from the columns' names or given; a bare
    'speed' needs its unit, a contradicting flag is an error."""
    seg = pd.DataFrame({"tmc": ["s1"], "start_lat": [47.59], "start_lon": [-122.33],
                        "end_lat": [47.60], "end_lon": [-122.33], "length_km": [1.2]})
    mph = pd.DataFrame({"tmc": "s1", "date": ["2018-05-08", "2018-05-09", "2018-05-10"],
                        "hour": 22, "speed_mph": [50.0, 55.0, 60.0]})
    a = import_probe_speeds(seg, mph).table
    assert a.loc[0, "speed"] == pytest.approx(55 * 1.609344, abs=1e-3)
    assert a.loc[0, "segment_length"] == 1200.0 and a.loc[0, "days"] == 3
    bare = mph.rename(columns={"speed_mph": "speed"})
    with pytest.raises(InputError, match="give --speed-unit"):
        import_probe_speeds(seg, bare)
    assert import_probe_speeds(seg, bare, speed_unit="mph").table.loc[0, "speed"] \
        == pytest.approx(a.loc[0, "speed"])
    with pytest.raises(InputError, match="is in mph, but --speed-unit says km/h"):
        import_probe_speeds(seg, mph, speed_unit="km/h")
    # travel times: from the product's column, or length over speed
    tt = import_probe_speeds(seg, mph, quantity="travel_time").table
    assert tt.loc[0, "travel_time"] == pytest.approx(
        np.mean([1200 / (v * 1.609344 / 3.6) for v in (50, 55, 60)]), abs=1e-2)
    timed = mph.assign(travel_time_seconds=[90.0, 80.0, 70.0])
    assert import_probe_speeds(seg, timed, quantity="travel_time").table.loc[0, "travel_time"] \
        == pytest.approx(80.0)


def test_a_timestamped_product_and_its_period(tmp_path):
    """NPMRDS' raw export has a timestamp per 15 minutes."""
    seg = pd.DataFrame({"tmc_code": ["s1"], "start_latitude": [47.59],
                        "start_longitude": [-122.33], "end_latitude": [47.60],
                        "end_longitude": [-122.33], "miles": [0.5]})
    stamps = [f"2018-05-0{d} 22:{m:02d}:00" for d in (8, 9) for m in (0, 15, 30, 45)]
    spd = pd.DataFrame({"tmc_code": "s1", "measurement_tstamp": stamps,
                        "speed(miles/hour)": [30.0] * 8})
    t = import_probe_speeds(seg, spd, hours="22").table
    assert list(t["begin"]) == ["22:00", "22:15", "22:30", "22:45"]
    assert list(t["end"]) == ["22:15", "22:30", "22:45", "23:00"]
    assert (t["days"] == 2).all()


def test_counts_of_loop_stations():
    """WSDOT loop volumes on the normal Tue-Thu nights: one short segment per
    station from its point in its direction, flagged values skipped."""
    got = import_counts(LOOPS, dates="2018-05-08,2018-05-09,2018-05-10,2018-05-16",
                        hours="21-23")
    t = got.table
    # of the 19 stations, I-5 SB MP 164.0-165.5 and SR 99 MP 30.5-32.0 both ways are
    # interpolations between detectors (the data's README says so)
    assert len(t) == 7 * 3 and (t["days"] == 4).all()
    note = next(n for n in got.notes if "interpolated" in n)
    assert note.startswith("12 stations skipped") and "I-5 SB MP 164.5" in note
    assert not t["segment"].str.startswith("SR 99").any()
    assert "I-5 SB MP 166.0" in set(t["segment"]) and "I-5 NB MP 164.5" in set(t["segment"])
    raw = pd.read_csv(LOOPS)
    days = raw[(raw["station"] == "I-5 NB MP 165.0") & (raw["hour"] == 22)
               & raw["date"].isin(["2018-05-08", "2018-05-09", "2018-05-10", "2018-05-16"])]
    row = t[(t["segment"] == "I-5 NB MP 165.0") & (t["begin"] == "22:00")].iloc[0]
    assert row["count"] == pytest.approx(days["volume"].mean(), abs=1e-3)
    assert row["count_sd"] == pytest.approx(days["volume"].std(ddof=1), abs=1e-3)
    # NB heads north, SB south, 30 m from the station's point
    nb = t[t["segment"] == "I-5 NB MP 165.0"].iloc[0]
    sb = t[t["segment"] == "I-5 SB MP 166.0"].iloc[0]
    assert nb["end_lat"] > nb["start_lat"] and sb["end_lat"] < sb["start_lat"]
    assert (nb["end_lat"] - nb["start_lat"]) * 111_320 == pytest.approx(STATION_SEGMENT)
    assert nb["segment_length"] == STATION_SEGMENT
    # the one suspect value (flag 211, 9 May 08:00) is skipped and said so
    morning = import_counts(LOOPS, dates="2018-05-09", hours="8")
    assert "1 flagged values skipped" in " ".join(morning.notes)
    assert "005es16583_MS_X" not in set(morning.table["segment"])
    assert "005es16583_MS_X" in set(import_counts(LOOPS, dates="2018-05-09", hours="8",
                                                  good_flags=r"[12]+").table["segment"])


def test_stations_interpolated_between_detectors_are_found_by_hand():
    """Four points of one road filled on a straight line in milepost between two
    detectors (a ramp between them or not) are not measurements; a point off the
    line in one period is, and three points in only two periods say nothing."""
    rows = []
    for day, (a, b) in enumerate([(1000.0, 1600.0), (900.0, 1500.0), (1200.0, 1300.0)]):
        for mp in (1.0, 1.5, 2.0, 2.5):
            v = a + (b - a) * (mp - 1.0) / 1.5
            rows.append(("NB", mp, day, v))
        rows.append(("NB", 3.0, day, 1700.0 + 10 * day))  # off the line
        # the other direction: measured, equal to the line except on one day
        for mp in (1.0, 1.5, 2.0):
            rows.append(("SB", mp, day, 800.0 + 100 * mp + (3.0 if day == 1 and mp == 1.5
                                                             else 0.0)))
    df = pd.DataFrame([{"station": f"R {d} MP {mp}", "road": "R", "direction": d,
                        "milepost": mp, "lat": 47.0 + mp / 100, "lon": -122.0,
                        "date": f"2018-05-{day + 8:02d}", "hour": 22, "volume": v, "flag": 1}
                       for d, mp, day, v in rows])
    got = import_counts(df)
    assert set(got.table["segment"]) == {"R NB MP 3.0", "R SB MP 1.0", "R SB MP 1.5",
                                         "R SB MP 2.0"}
    assert "4 stations skipped" in " ".join(got.notes)
    assert "R NB MP 1.0, R NB MP 1.5, R NB MP 2.0, R NB MP 2.5" in " ".join(got.notes)
    assert len(import_counts(df, keep_interpolated=True).table) == 8
    two_days = df[df["date"] != "2018-05-10"]
    assert len(import_counts(two_days).table) == 8     # too few periods to tell
    assert len(import_counts(df.drop(columns="milepost")).table) == 8


def test_split_into_shorter_intervals_keeps_the_hours_weight():
    hourly = import_counts(LOOPS, weekdays="Tue-Thu", hours="22").table
    quarter = import_counts(LOOPS, weekdays="Tue-Thu", hours="22", interval=900).table
    assert len(quarter) == 4 * len(hourly)
    assert list(quarter["begin"].unique()) == ["22:00", "22:15", "22:30", "22:45"]
    one = hourly.set_index("segment")
    q = quarter[quarter["begin"] == "22:30"].set_index("segment")
    # a quarter holds a quarter of the hour's vehicles; an error of δ vehicles in the
    # hour, δ/4 in each quarter, costs 4 (δ/4)² / sd_q² = δ² / sd² with sd_q = sd / 2
    assert np.allclose(q["count"], one.loc[q.index, "count"] / 4, atol=1e-3)
    assert np.allclose(q["count_sd"], one.loc[q.index, "count_sd"] / 2, atol=1e-3)
    speeds = import_probe_speeds(TMC, NPMRDS, dates=NORMAL, hours="22", interval=1800).table
    hour = import_probe_speeds(TMC, NPMRDS, dates=NORMAL, hours="22").table
    assert len(speeds) == 2 * len(hour)
    first = speeds[speeds["begin"] == "22:00"].set_index("segment")
    h = hour.set_index("segment").loc[first.index]
    assert np.allclose(first["speed"], h["speed"]) and \
        np.allclose(first["speed_sd"], h["speed_sd"] * math.sqrt(2), atol=1e-3)
    with pytest.raises(InputError, match="must divide the product's period of 3600 s"):
        import_counts(LOOPS, hours="22", interval=1000)


def test_selection_text_and_its_mistakes():
    sel = Selection.parse(dates="2018-05-07, 2018-05-08", weekdays="Tue-Thu,Sat",
                          hours="7-9,21")
    assert len(sel.dates) == 2 and sel.weekdays == {1, 2, 3, 5}
    assert sel.hours == {7, 8, 9, 21}
    with pytest.raises(InputError) as err:
        Selection.parse(dates="2018-5-x", weekdays="Tue-Fun", hours="23-21")
    msg = str(err.value)
    assert "3 problems" in msg and "dates: cannot read '2018-5-x'" in msg
    with pytest.raises(InputError, match="no data in the chosen days and hours"):
        import_counts(LOOPS, dates="2018-05-07")          # a Monday: no loop export


def test_cli_import_commands(tmp_path, capsys):
    out = tmp_path / "observed.csv"
    code = main(["observations", "import-probe-speeds", str(TMC), str(NPMRDS),
                 "--dates", NORMAL, "--hours", "21-23", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and out.is_file()
    assert "130 rows, 46 segments" in printed and "fewer than 3 days" in printed
    code = main(["observations", "import-counts", str(LOOPS), "--weekdays", "Tue-Thu",
                 "--hours", "8", "--out", str(tmp_path / "counts.csv")])
    printed = capsys.readouterr().out
    assert code == 0 and "flagged values skipped" in printed
    code = main(["observations", "import-counts", str(LOOPS), "--hours", "25",
                 "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "hours: cannot read '25'" in err
    code = main(["observations", "match", str(out), "--net",
                 str(ROOT / "networks" / "sodo" / "sodo.net.xml"), "--out",
                 str(tmp_path / "m")])
    printed = capsys.readouterr().out
    assert code == 0 and "0 dropped" in printed
    assert (tmp_path / "m" / "matched_segments.csv").is_file()
    assert (tmp_path / "m" / "matched_segments.png").is_file()


def test_what_an_import_skips_it_says():
    counts = pd.DataFrame({
        "detector": ["d1"] * 4 + ["d2"] * 2, "dir": ["EB"] * 4 + ["WB"] * 2,
        "latitude": [47.59] * 4 + [None] * 2, "longitude": [-122.33] * 6,
        "date": ["2018-05-08", "2018-05-09", "2018-05-10", "2018-05-15"] + ["2018-05-08"] * 2,
        "hour": [22, 22, 22, 22, 22, 23], "count": [100, 110, None, 90, 50, 60],
        "flag": ["1", "1", "1", "0", "1", "1"]})
    got = import_counts(counts)
    t = got.table
    assert list(t["segment"]) == ["d1"] and t.loc[0, "days"] == 2
    assert t.loc[0, "count"] == pytest.approx(105.0)
    # two days: the sd is at least the Poisson floor and the pooled sd (none: default)
    assert t.loc[0, "count_sd"] >= math.sqrt(105)
    assert t.loc[0, "end_lon"] > t.loc[0, "start_lon"]          # eastbound
    notes = " ".join(got.notes)
    for part in ("1 flagged values skipped", "2 values of stations without coordinates",
                 "1 empty or negative values skipped"):
        assert part in notes, part
    with pytest.raises(InputError, match="direction 'up' is not one of NB, SB"):
        import_counts(counts.assign(dir="up"))
    seg = pd.DataFrame({"tmc": ["s1"], "start_lat": [47.59], "start_lon": [-122.33],
                        "end_lat": [47.60], "end_lon": [-122.33], "miles": [0.5]})
    with pytest.raises(InputError, match="no speed or travel time column"):
        import_probe_speeds(seg, pd.DataFrame({"tmc": ["s1"], "date": ["2018-05-08"],
                                               "hour": [1], "volume": [3]}))


def test_a_simulation_window_keeps_the_rows_inside_it():
    """The normal evening runs 21:30-24:00: half hours keep the inside half of 21 h."""
    t = import_probe_speeds(TMC, NPMRDS, dates=NORMAL, hours="21-23", window="21:30-24:00",
                            interval=1800).table
    assert t["begin"].iloc[0] == "21:30" and t["end"].iloc[-1] == "24:00"
    assert sorted(t["begin"].unique()) == ["21:30", "22:00", "22:30", "23:00", "23:30"]
    with pytest.raises(InputError, match="no row lies wholly inside the window"):
        import_counts(LOOPS, hours="21", window="21:30-24:00")
    with pytest.raises(InputError, match="window: expected BEGIN-END"):
        import_counts(LOOPS, window="24:00-21:30")

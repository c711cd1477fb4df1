"""Observations: format, validation, map matching, aggregation of simulated values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import DEG_PER_M, LAT0, LON0, write_file

from egress.calibration.observations import read_observations, simulated_values
from egress.cli import main
from egress.errors import InputError
from egress.network import match_segment, read_net


def _lonlat(east: float, north: float) -> tuple[float, float]:
    return LON0 + east * DEG_PER_M, LAT0 + north / 111_200.0


def test_read_edges_and_coordinates(tmp_path, straight_net):
    a, b = _lonlat(100, 0), _lonlat(1900, 0)
    path = write_file(tmp_path / "obs.csv", f"""
        segment,edges,begin,end,speed,count,travel_time,start_lon,start_lat,end_lon,end_lat
        s1,ab,0,100,36,,,,,,
        s2,ab bc,0:01:40,200,,5,200,,,,
        s3,,200,300,30,,,{a[0]},{a[1]},{b[0]},{b[1]}
        """)
    obs = read_observations(path, straight_net, window=(0, 300), period=100)
    t = obs.table
    assert list(t["segment"]) == ["s1", "s2", "s3"]
    assert t.loc[1, "edges"] == ("ab", "bc") and t.loc[1, "begin"] == 100
    assert t.loc[2, "edges"] == ("ab", "bc")          # map-matched across the node
    assert t.loc[0, "free_speed"] == pytest.approx(36.0)
    assert t.loc[0, "speed_sd"] == 5.0 and t.loc[1, "count_sd"] == 5.0
    assert obs.n_values == 4 and len(obs.matches) == 1


def test_match_direction(straight_net):
    net = read_net(straight_net)
    assert match_segment(net, _lonlat(200, 0), _lonlat(800, 0))[0] == ("ab",)
    # against the one-way direction: no edge heads that way
    assert "no edge" in match_segment(net, _lonlat(800, 0), _lonlat(200, 0))
    assert "no edge" in match_segment(net, _lonlat(500, 900), _lonlat(900, 900))


def test_every_bad_row_is_reported(tmp_path, straight_net):
    path = write_file(tmp_path / "bad.csv", """
        edges,begin,end,speed,count
        nope,0,100,30,
        bc ab,0,100,30,
        ab,0,400,30,
        ab,0,100,-3,
        ab,0,100,,-1
        ab,100,200,30,
        ab,100,200,31,
        ab,50,100,30,
        ab,0,100,,
        ab,x,100,30,
        """)
    with pytest.raises(InputError) as err:
        read_observations(path, straight_net, window=(0, 300), period=100)
    msg = str(err.value)
    for part in ["line 2: edges: unknown edge 'nope'",
                 "line 3: edges: not consecutive, no car connection from 'bc' to 'ab'",
                 "line 4: interval 0-400 is outside the simulation window 0-300",
                 "line 5: speed '-3' must be > 0", "line 6: count '-1' must be >= 0",
                 "line 8: duplicate of line 7", "line 9: interval 50-100 is not on the",
                 "line 10: no value", "line 11: begin 'x' is not a time"]:
        assert part in msg, part
    assert str(path) in msg


def test_unknown_column_and_missing_segment(tmp_path, straight_net):
    path = write_file(tmp_path / "bad.csv", "edge,begin,end,speed\nab,0,100,3\n")
    with pytest.raises(InputError, match="unknown column 'edge'.*needs a column 'edges'|"
                       "needs a column 'edges'.*unknown column 'edge'"):
        read_observations(path, straight_net)


def test_aggregation_by_hand(tmp_path, straight_net):
    """Sampled-seconds-weighted speed, first-edge counts, travel times, free flow."""
    net = read_net(straight_net)
    path = write_file(tmp_path / "o.csv", """
        edges,begin,end,speed,count,travel_time
        ab bc,0,200,10,1,1
        ab,0,100,10,1,1
        bc,200,300,10,1,1
        """)
    obs = read_observations(path, net, window=(0, 300), period=100)
    edges = pd.DataFrame({
        "begin": [0, 0, 100, 100], "end": [100, 100, 200, 200],
        "edge": ["ab", "bc", "ab", "bc"], "sampled_seconds": [100.0, 50.0, 0.0, 150.0],
        "speed": [8.0, 5.0, np.nan, 4.0], "entered": [2, 1, 0, 3], "departed": [1, 0, 0, 0]})
    v = simulated_values(edges, obs, net)
    # row order is by begin then segment: "ab" (0-100), "ab bc" (0-200), "bc" (200-300)
    ab, both, bc = v.iloc[0], v.iloc[1], v.iloc[2]
    assert ab["speed"] == pytest.approx(8.0 * 3.6)
    assert ab["count"] == 3
    assert both["speed"] == pytest.approx((100 * 8 + 50 * 5 + 150 * 4) / 300 * 3.6)
    assert both["count"] == 3                   # first edge ab only: 2 + 1 + 0
    la, lb = net.getEdge("ab").getLength(), net.getEdge("bc").getLength()
    assert both["travel_time"] == pytest.approx(la / 8 + lb / ((50 * 5 + 150 * 4) / 200))
    assert bc["speed"] == pytest.approx(36.0)   # nobody there: free-flow speed
    assert bc["count"] == 0 and bc["travel_time"] == pytest.approx(lb / 10)
    assert both["sampled_seconds"] == 300 and math.isclose(bc["sampled_seconds"], 0)


def test_cli_bad_observations_one_line(tmp_path, straight_net, capsys):
    taz = write_file(tmp_path / "z.taz.xml", """
        <additional><taz id="z1" edges="ab"/><taz id="z2" edges="bc"/></additional>""")
    od = write_file(tmp_path / "od.csv", "origin,destination,begin,end,trips\nz1,z2,0,300,5\n")
    obs = write_file(tmp_path / "o.csv", "edges,begin,end,speed\nzz,0,300,30\nab,0,300,-1\n")
    code = main(["calibrate", "--net", str(straight_net), "--taz", str(taz), "--od", str(od),
                 "--observations", str(obs), "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "o.csv" in err and "line 2" in err and "line 3" in err

"""Observations: format, validation, map matching, aggregation of simulated values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import DEG_PER_M, LAT0, LON0, write_file

from egress.calibration.matched import REPORT_COLUMNS, write_matched_segments
from egress.calibration.observations import read_observations, simulated_values
from egress.cli import main
from egress.errors import InputError
from egress.network import match_segment, read_net
from egress.network.matching import match_part


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


# --------------------------------------------------------------------------- real segments


def test_match_part_clips_what_lies_outside_the_model(straight_net):
    """A segment running past the network's end matches its part inside; too
    small a part, a road the model lacks, or the wrong direction do not match."""
    net = read_net(straight_net)
    whole = match_part(net, _lonlat(200, 0), _lonlat(800, 0))
    assert whole.ok and whole.edges == ("ab",) and whole.clipped_end == 0
    assert whole.share == pytest.approx(1.0, abs=0.01)
    past = match_part(net, _lonlat(1000, 0), _lonlat(2600, 0))   # 600 m past c
    assert past.ok and past.edges == ("bc",)
    assert 500 < past.clipped_end < 600 and past.clipped_start == 0
    assert past.share == pytest.approx(1000 / 1600, abs=0.03)
    # a given length (along the road) is what the share is measured against
    assert match_part(net, _lonlat(200, 0), _lonlat(800, 0), length=1000).share \
        == pytest.approx(0.6, abs=0.01)
    little = match_part(net, _lonlat(1700, 0), _lonlat(2600, 0))
    assert not little.ok and little.edges == ("bc",) and "only 33%" in little.why
    lacking = match_part(net, _lonlat(500, 900), _lonlat(900, 900))
    assert not lacking.ok and "no road of the model along it" in lacking.why
    against = match_part(net, _lonlat(800, 0), _lonlat(200, 0))
    assert not against.ok and "no road of the model along it" in against.why


def _coords(east0: float, east1: float, north: float = 0.0) -> str:
    (a, b), (c, d) = _lonlat(east0, north), _lonlat(east1, north)
    return f"{a:.7f},{b:.7f},{c:.7f},{d:.7f}"


def test_unmatched_rows_are_dropped_with_one_warning_each(tmp_path, straight_net, caplog):
    path = write_file(tmp_path / "real.csv", f"""
        segment,begin,end,speed,start_lon,start_lat,end_lon,end_lat,segment_length
        inside,0,100,30,{_coords(200, 800)},
        past,0,100,30,{_coords(1000, 2600)},1600
        stub,0,100,30,{_coords(1700, 2600)},
        elsewhere,0,100,30,{_coords(500, 900, 900)},
        elsewhere,100,200,30,{_coords(500, 900, 900)},
        """)
    with caplog.at_level("WARNING", logger="egress"):
        obs = read_observations(path, straight_net, window=(0, 300), period=100)
    assert list(obs.table["segment"]) == ["inside", "past"]
    assert obs.table.loc[1, "matched_share"] == pytest.approx(1000 / 1600, abs=0.03)
    m = obs.matches
    assert list(m["status"]) == ["kept", "kept", "dropped", "dropped", "dropped"]
    assert list(obs.dropped["row"]) == [4, 5, 6]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 3
    assert "line 4 (segment stub): dropped" in warnings[0] and "only 33%" in warnings[0]
    assert "line 6 (segment elsewhere)" in warnings[2] and "no road" in warnings[2]
    with pytest.raises(InputError) as err:
        read_observations(path, straight_net, window=(0, 300), period=100, strict=True)
    assert "line 4: cannot map-match" in str(err.value) and "line 6" in str(err.value)
    only_bad = write_file(tmp_path / "bad.csv", f"""
        begin,end,speed,start_lon,start_lat,end_lon,end_lat
        0,100,30,{_coords(500, 900, 900)}
        """)
    with pytest.raises(InputError, match="all 1 rows dropped"):
        read_observations(only_bad, straight_net)


def test_rows_matching_the_same_edges_are_merged(tmp_path, straight_net, caplog):
    """Two segments side by side on one carriageway (NPMRDS' I-5 and I-5 N) become
    one row: mean value, sd from their own and their disagreement."""
    path = write_file(tmp_path / "twins.csv", f"""
        segment,begin,end,speed,speed_sd,count,start_lon,start_lat,end_lon,end_lat
        one,0,100,30,3,,{_coords(200, 800)}
        two,0,100,40,4,20,{_coords(210, 790, 5)}
        one,100,200,30,3,,{_coords(200, 800)}
        """)
    with caplog.at_level("WARNING", logger="egress"):
        obs = read_observations(path, straight_net, window=(0, 300), period=100)
    t = obs.table
    assert len(t) == 2 and t.loc[0, "segment"] == "one & two"
    assert t.loc[0, "speed"] == pytest.approx(35.0)
    assert t.loc[0, "speed_sd"] == pytest.approx(math.sqrt((9 + 16) / 2 + 25))
    assert t.loc[0, "count"] == 20 and t.loc[0, "count_sd"] == pytest.approx(5.0)
    assert list(obs.matches["status"]) == ["merged", "merged", "kept"]
    assert list(obs.matches["merged_with"][:2]) == ["3", "2"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "segments one, two match the same edges (ab)" in warnings[0]
    assert "1 interval(s) (lines 2+3;" in warnings[0]
    with pytest.raises(InputError, match="line 3: matches the same edges as line 2"):
        read_observations(path, straight_net, window=(0, 300), period=100, strict=True)


def test_matched_segments_table_and_map(tmp_path, straight_net):
    path = write_file(tmp_path / "real.csv", f"""
        segment,begin,end,speed,start_lon,start_lat,end_lon,end_lat
        past,0,100,30,{_coords(1000, 2600)}
        elsewhere,0,100,30,{_coords(500, 900, 900)}
        """)
    obs = read_observations(path, straight_net)
    files = write_matched_segments(obs, straight_net, tmp_path / "out")
    table = pd.read_csv(files["table"])
    assert list(table.columns) == REPORT_COLUMNS
    assert list(table["status"]) == ["kept", "dropped"] and table.loc[0, "edges"] == "bc"
    assert files["map"].stat().st_size > 10_000


@pytest.mark.sumo
def test_the_segments_road_name_picks_between_roads_on_top_of_each_other(tmp_path):
    """A viaduct over a surface street: only the name tells them apart; a segment on a
    road the model has elsewhere does not match a street of another name."""
    from conftest import write_plain_net

    net = write_plain_net(tmp_path, {"a": (0, 0), "b": (1000, 0), "c": (0, 8), "d": (1000, 8),
                                     "e": (0, 600), "f": (1000, 600)},
                          [("street", "a", "b", 1, 13.9, 'name="1st Ave S"'),
                           ("viaduct", "c", "d", 2, 22.2, 'name="SR 99"'),
                           ("other", "e", "f", 1, 13.9, 'name="Main St"')])
    netobj = read_net(net)
    seg = (_lonlat(100, -5), _lonlat(900, -5))
    assert match_part(netobj, *seg).edges == ("street",)          # nearest
    assert match_part(netobj, *seg, road="WA-99").edges == ("viaduct",)
    assert match_part(netobj, *seg, road="1ST AVENUE S").edges == ("street",)
    far = match_part(netobj, _lonlat(100, 590), _lonlat(900, 590), road="SR 99")
    assert not far.ok and "its road SR 99 is not near it" in far.why
    # a road the model has nowhere: names cannot judge, the nearest road matches
    assert match_part(netobj, _lonlat(100, 590), _lonlat(900, 590), road="Elm St").ok


def test_calibrate_drops_segments_off_the_model_unless_strict(tmp_path, straight_net, capsys,
                                                              caplog):
    taz = write_file(tmp_path / "z.taz.xml", """
        <additional><taz id="z1" edges="ab"/><taz id="z2" edges="bc"/></additional>""")
    od = write_file(tmp_path / "od.csv", "origin,destination,begin,end,trips\nz1,z2,0,300,5\n")
    obs = write_file(tmp_path / "o.csv", f"""
        segment,begin,end,speed,start_lon,start_lat,end_lon,end_lat
        inside,0,300,30,{_coords(200, 800)}
        elsewhere,0,300,30,{_coords(500, 900, 900)}
        """)
    args = ["calibrate", "--net", str(straight_net), "--taz", str(taz), "--od", str(od),
            "--observations", str(obs), "--period", "300", "--budget", "2",
            "--model-noise", "none"]
    with caplog.at_level("WARNING", logger="egress"):
        code = main(["-q", *args, "--out", str(tmp_path / "c")])
    assert code == 0, capsys.readouterr().err
    assert any("line 3 (segment elsewhere): dropped" in r.getMessage() for r in caplog.records)
    capsys.readouterr()
    code = main([*args, "--strict", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "line 3: cannot map-match" in err

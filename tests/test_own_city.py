"""One's own city, end to end: an OpenStreetMap extract to an evaluated policy and its report.

The fixture ``tests/data/own-city/town.osm`` is a small extract in OpenStreetMap's
XML format, made by hand (a 3 × 3 street grid beside a motorway with three
on-ramps; the street names are invented). Its venues and policy files give every
place by coordinates, as ``docs/your-city.md`` describes, so the path needs no edge
id. The report of the evaluation is then rendered in a real browser (Debian's
``chromium``, headless) and checked for what a reader sees.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT

from egress import build_osm, evaluate_policy, load_scenario, write_report

DATA = ROOT / "tests" / "data" / "own-city"
pytestmark = pytest.mark.sumo


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    """The guide's steps: build the network, evaluate the policy, write the report."""
    folder = tmp_path_factory.mktemp("town")
    for name in ("venues.toml", "places.csv", "town-event.toml", "town-policies.toml"):
        shutil.copy(DATA / name, folder / name)
    build_osm(DATA / "town.osm", folder / "town.net.xml")
    result = evaluate_policy(folder / "town-event.toml", "third_st_ramp", [0.5], 2,
                             policy_file=folder / "town-policies.toml", out=folder / "out",
                             progress=False, workers=2)
    report = write_report(folder / "out")
    return folder, result, report


def test_places_given_by_coordinates_are_snapped_to_the_right_edges(town):
    folder, result, _ = town
    snapped = pd.read_csv(result.out / "snapped.csv").set_index("what")
    assert snapped.loc["lot 'lot_a'", "street"] == "2nd Street"
    assert snapped.loc["lot 'lot_b'", "street"] == "Main Street"
    assert snapped.loc["policy 'third_st_ramp'.signs[0]", "street"] == "Main Street"
    assert snapped.loc["policy 'third_st_ramp'.from_ramp", "street"] == \
        "Main Street on-ramp to I-94 north"
    assert snapped.loc["policy 'third_st_ramp'.to_ramp", "street"] == \
        "3rd Street on-ramp to I-94 north"
    assert (snapped["distance"] < 5).all()
    # the heading picks the direction of a two-way street: eastbound Main Street runs
    # towards increasing longitude
    from egress.network import read_net
    from egress.network.snapping import snap

    net = read_net(folder / "town.net.xml")
    east = snap(net, -93.252373, 44.97, "east", heading=90)
    west = snap(net, -93.252373, 44.97, "west", heading=270)
    assert east.edge != west.edge and east.street == west.street == "Main Street"
    scen = load_scenario(folder / "town-event.toml")
    assert scen.venues["arena"].lots[0].exits == (snapped.loc["lot 'lot_a'", "edge"],)


def test_the_evaluation_gives_savings_measures_and_gis_layers(town):
    _, result, _ = town
    row = result.table.iloc[0]
    assert row["replications"] == 2 and row["invalid_runs"] == 0
    assert 0.3 < row["realised_compliance"] < 0.7
    ev = result.measures[result.measures["group"] == "event"].set_index("measure")
    assert set(ev.index) == {"clear_95", "clear_100", "delay_vh", "median_min", "p95_min",
                             "vehicle_hours"}
    # every event car is out long before the window ends: clearance is a clock time
    assert 22 * 3600 < ev.loc["clear_95", "baseline_value"] < 23.25 * 3600
    assert ev.loc["clear_95", "censored"] == 0
    ramps = result.places[result.places["place_kind"] == "ramp"]
    assert "3rd Street on-ramp to I-94 north" in set(ramps["label"])
    out = ramps[(ramps["measure"] == "vehicles_out")].set_index("label")
    # the sign sends northbound drivers from the Main Street ramp to the 3rd Street one
    assert out.loc["3rd Street on-ramp to I-94 north", "change"] > 0
    assert out.loc["Main Street on-ramp to I-94 north", "change"] < 0
    gis = result.out / "gis" / "town-event"
    for name in ("edges_baseline", "edges_third_st_ramp_f0.50", "lots", "signs", "venues",
                 "study_area", "places"):
        data = json.loads((gis / f"{name}.geojson").read_text())
        assert data["type"] == "FeatureCollection" and data["features"], name
    edges = json.loads((gis / "edges_third_st_ramp_f0.50.geojson").read_text())["features"]
    props = edges[0]["properties"]
    assert {"name", "speed_2200", "change_2200", "speed_window"} <= set(props)
    lon, lat = edges[0]["geometry"]["coordinates"][0]
    assert -93.27 < lon < -93.24 and 44.96 < lat < 44.98     # WGS84, not metres


def test_resume_reuses_the_finished_runs(town):
    folder, result, _ = town
    cfg = result.out / "town-event" / "baseline" / "r0" / "vehroutes.xml"
    before = cfg.stat().st_mtime_ns
    again = evaluate_policy(folder / "town-event.toml", "third_st_ramp", [0.5], 2,
                            policy_file=folder / "town-policies.toml", out=folder / "out",
                            progress=False, workers=2, resume=True)
    assert cfg.stat().st_mtime_ns == before          # SUMO did not run again
    pd.testing.assert_frame_equal(again.table, result.table)


# --------------------------------------------------------------------------- the browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--hide-scrollbars", "--window-size=1280,900"]

#: Measures the page in the browser once it has loaded: where the summary sits, whether
#: every image decoded, and the text a reader sees.
_PROBE = """<script>
window.addEventListener('load', () => {
  const box = id => document.getElementById(id).getBoundingClientRect();
  const first = document.querySelector('#summary li');
  const out = {summary: box('summary').top, validity: box('validity').top,
               answer: first ? first.getBoundingClientRect().bottom : 1e9,
               viewport: window.innerHeight,
               images: [...document.images].map(i => [i.alt, i.complete && i.naturalWidth > 0]),
               text: document.body.innerText};
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(tmp_path: Path, *args: str) -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    run = subprocess.run([CHROMIUM, *_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                         capture_output=True, text=True, timeout=120)
    return run.stdout


def test_the_report_in_a_real_browser(town, tmp_path):
    folder, result, report = town
    page = tmp_path / "probe.html"
    page.write_text(report.read_text().replace("</body>", _PROBE + "</body>"))
    dom = _chromium(tmp_path, "--virtual-time-budget=20000", "--dump-dom", page.as_uri())
    probe = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S).group(1)
                       .replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
                       .replace("&quot;", '"'))
    # the answer comes first: the summary and its first answer above the fold
    assert probe["summary"] < 200 and probe["answer"] < probe["viewport"]
    assert probe["summary"] < probe["validity"] < 2 * probe["viewport"]
    # every figure loaded, and there are figures (maps per slice among them)
    assert len(probe["images"]) >= 5 and all(ok for _, ok in probe["images"]), probe["images"]
    text = probe["text"]
    for words in ("Summary", "Question.", "Answer.", "Can the answer be trusted?",
                  "3rd Street on-ramp to I-94 north", "teleports", "95% of vehicles out by",
                  "Message signs on Main Street"):
        assert words in text, words
    # no raw column names, no absolute paths, no 24+ hour clock times
    columns = set()
    for name in ("table", "savings", "measures", "places", "runs"):
        columns |= {c for c in pd.read_csv(result.out / f"{name}.csv", nrows=1).columns
                    if "_" in c}
    shown = set(re.findall(r"[A-Za-z0-9_]+", text))
    assert not (columns & shown), sorted(columns & shown)
    assert str(folder) not in text and "/tmp/" not in text
    assert not re.search(r"\b2[4-9]:\d\d", text)
    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", report.as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_a_single_run_writes_its_measures_and_layers(town, tmp_path):
    from egress import cli

    folder, _, _ = town
    code = cli.main(["-q", "--units", "us", "simulate", str(folder / "town-event.toml"),
                     "--out", str(tmp_path / "run")])
    assert code == 0
    try:
        m = pd.read_csv(tmp_path / "run" / "measures.csv").set_index("kind")
        assert m.loc["event", "vehicles"] == 750 and not m.loc["event", "clear_95_censored"]
        places = pd.read_csv(tmp_path / "run" / "places.csv")
        assert {"lot_exit", "ramp"} == set(places["place_kind"])
        edges = json.loads((tmp_path / "run" / "gis" / "edges.geojson").read_text())
        units = {f["properties"].get("speed_unit") for f in edges["features"]}
        assert units == {"mph"}
        page = write_report(tmp_path / "run").read_text()
        assert "95% out by" in page and "Engineering measures" in page
    finally:
        from egress.units import set_units

        set_units("si")


def test_a_point_far_from_any_street_is_refused(town):
    from egress.errors import NetworkError
    from egress.network import read_net
    from egress.network.snapping import snap

    folder, _, _ = town
    net = read_net(folder / "town.net.xml")
    with pytest.raises(NetworkError, match="no street edge within 150 m"):
        snap(net, -93.30, 44.90, "lot 'far'")
    # a ramp asked for where there is only a street
    with pytest.raises(NetworkError, match="no ramp edge"):
        snap(net, -93.2575, 44.9727, "to_ramp", kind="ramp", radius=50)

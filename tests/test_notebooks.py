"""The notebooks run top to bottom (with small settings) and are committed without outputs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, write_file

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: These tests run egress (and so SUMO) in a subprocess.
pytestmark = pytest.mark.sumo


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict[str, str]:
    """Environment variables that shrink every notebook to a few seconds of SUMO."""
    folder = tmp_path_factory.mktemp("nb")
    sodo = ROOT / "networks" / "sodo"
    scenario = write_file(folder / "tiny-sodo.toml", f"""
        name = "tiny-sodo"
        description = "A very small evening on the SODO network (test settings)."
        [network]
        file = "{ROOT / 'networks' / 'sodo-2018' / 'sodo-2018.net.xml'}"
        venues = "{sodo / 'venues.toml'}"
        [simulation]
        begin = "21:50"
        end = "22:40"
        seed = 42
        mode = "meso"
        edgedata_period = 300
        [demand]
        interval = 900
        [demand.event]
        venue = "lumen_field"
        attendance = 1500
        end = "22:00"
        [demand.event.profile]
        mode = 600
        tail = 1500
        [demand.background]
        scale = 0.05
        """)
    sweep = write_file(folder / "tiny-sweep.toml", f"""
        name = "tiny-sweep"
        policy_file = "{ROOT / 'scenarios' / 'sodo-policies.toml'}"
        policies = ["cherry_st_nb"]
        fractions = [0.5]
        seeds = [1, 2]
        [[events]]
        name = "tiny"
        scenario = "{scenario}"
        """)
    return {
        "EGRESS_ROOT": str(ROOT), "EGRESS_NB_OUT": str(folder / "out"),
        "EGRESS_NB_EVENT": str(scenario), "EGRESS_NB_SCENARIO": str(scenario),
        "EGRESS_NB_BUDGET": "3", "EGRESS_NB_METHOD": "spsa", "EGRESS_NB_INTERVAL": "600",
        "EGRESS_NB_SEGMENTS": "20",
        "EGRESS_NB_POLICY_NAMES": "cherry_st_nb", "EGRESS_NB_FRACTIONS": "0.5",
        "EGRESS_NB_REPLICATIONS": "2", "EGRESS_NB_MODE": "meso",
        "EGRESS_NB_SWEEP": str(sweep), "EGRESS_NB_WORKERS": "2",
        "EGRESS_NB_NORMAL": str(scenario), "EGRESS_NB_EVENT_NIGHT": str(scenario),
        "EGRESS_NB_HOURS": "22",
    }


def test_there_are_five_notebooks():
    assert [p.name[0] for p in NOTEBOOKS] == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, small, monkeypatch, tmp_path):
    from nbclient import NotebookClient

    for k, v in small.items():
        monkeypatch.setenv(k, v)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=dict(os.environ))
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.outputs
                 if "image/png" in o.get("data", {}))
    assert images >= 1, f"{path.name} drew no figure"
    # progress bars show in a notebook (tqdm's default hid them: no terminal there)
    text = " ".join(str(o.get("text", "")) + str(o.get("data", {}))
                    for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    if path.name[0] in "23":
        assert re.search(r"(calibrating|evaluating|simulating)\b.*\d+/\d+", text), \
            f"{path.name} showed no progress bar"
    assert not list(Path(path).parent.glob("*.nbconvert.ipynb"))

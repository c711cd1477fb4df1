"""egress sweep: expansion, keys, the results store, resume, retries, and a real Dask cluster."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import fake_runner, write_file, write_study

from egress import cli
from egress.errors import SchedulerError, SweepError
from egress.policies import BASELINE
from egress.sweep import (
    finished_keys,
    load_failures,
    load_results,
    load_sweep,
    run_sweep,
    run_task,
    savings,
    task_key,
)

BIN = Path(sys.executable).parent








@pytest.fixture
def study(tmp_path, fork_net) -> Path:
    return write_study(tmp_path, fork_net)


# --------------------------------------------------------------------------- expansion


def test_expansion_is_the_product_with_shared_baselines(study):
    sweep = load_sweep(study)
    table = sweep.table()
    assert len(table) == 2 + 2 * 2          # a baseline per seed + divert × 2 fractions × 2 seeds
    base = table[table["policy"] == BASELINE]
    assert sorted(base["seed"]) == [1, 2] and base["fraction"].isna().all()
    assert table["key"].is_unique
    assert list(table["policy"][:2]) == [BASELINE, BASELINE]   # baselines first


def test_policy_without_signs_runs_once_per_seed(tmp_path, fork_net):
    path = write_study(tmp_path, fork_net)
    path.write_text(path.read_text().replace('policies = ["divert"]',
                                             'policies = ["divert", "hov"]'))
    table = load_sweep(path).table()
    hov = table[table["policy"] == "hov"]
    assert len(hov) == 2 and hov["fraction"].isna().all()


def test_explicit_runs_add_their_baselines(tmp_path, fork_net):
    path = write_file(tmp_path / "s.toml", """
        name = "explicit"
        policy_file = "policies.toml"
        [[events]]
        name = "fork"
        scenario = "fork.toml"
        [[runs]]
        event = "fork"
        policy = "divert"
        fraction = 0.3
        seed = 7
        [[runs]]
        event = "fork"
        policy = "divert"
        fraction = 0.6
        seed = 7
        """)
    write_study(tmp_path, fork_net)   # scenario and policy files
    table = load_sweep(path).table()
    assert sorted(zip(table["policy"], table["fraction"].fillna(-1), strict=True)) == [
        (BASELINE, -1), ("divert", 0.3), ("divert", 0.6)]


def test_every_problem_is_reported_at_once(tmp_path, fork_net):
    write_study(tmp_path, fork_net)
    bad = write_file(tmp_path / "bad.toml", """
        name = "bad"
        policy_file = "policies.toml"
        policies = ["divert", "nope"]
        fractions = [0.5, 1.5]
        seeds = [1, -2]
        retrys = 3
        [[events]]
        name = "fork"
        scenario = "missing.toml"
        """)
    with pytest.raises(SweepError) as err:
        load_sweep(bad)
    msg = str(err.value)
    for part in ("retrys: unknown key (did you mean retries?)", "unknown policy 'nope'",
                 "fractions: 1.5", "seeds: -2", "events[0].scenario", "bad.toml"):
        assert part in msg


def test_malformed_sweep_is_one_line_and_exit_2(tmp_path, capsys):
    path = write_file(tmp_path / "broken.toml", "name = [\n")
    assert cli.main(["-q", "sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "broken.toml: malformed TOML" in err


# --------------------------------------------------------------------------- keys


def test_same_inputs_give_the_same_keys(study):
    assert [t.key for t in load_sweep(study).tasks] == [t.key for t in load_sweep(study).tasks]


@pytest.mark.parametrize("change", ["routes", "scenario", "policy", "network"])
def test_any_input_change_gives_new_keys(study, change):
    before = {(t.policy, t.fraction, t.seed): t.key for t in load_sweep(study).tasks}
    folder = study.parent
    if change == "routes":
        p = folder / "fork.rou.xml"
        p.write_text(p.read_text().replace('depart="3"', 'depart="4"'))
    elif change == "scenario":
        p = folder / "fork.toml"
        p.write_text(p.read_text().replace("end = 400", "end = 401"))
    elif change == "policy":
        p = folder / "policies.toml"
        p.write_text(p.read_text().replace('description = "take the lower ramp"',
                                           'description = "take the lower ramp"\n'
                                           'vtypes = ["event", "other"]'))
    else:
        scen = folder / "fork.toml"
        net = Path(scen.read_text().split('file = "')[1].split('"')[0])
        copy = folder / "copy.net.xml"
        copy.write_text(net.read_text() + "<!-- a changed copy -->\n")
        scen.write_text(scen.read_text().replace(str(net), str(copy)))
    after = {(t.policy, t.fraction, t.seed): t.key for t in load_sweep(study).tasks}
    assert before.keys() == after.keys()
    for k in before:
        if change == "policy" and k[0] == BASELINE:
            assert before[k] == after[k]      # baselines do not depend on the policies
        else:
            assert before[k] != after[k]


def test_parameters_and_versions_enter_the_key():
    params = {"event": "e", "policy": "p", "fraction": 0.3, "seed": 1}
    files = {"scenario": "ab" * 32}
    v = {"egress": "0.1.0", "sumo": "1.28.0"}
    k = task_key(params, files, None, v)
    assert k == task_key(dict(params), dict(files), None, dict(v))
    assert k != task_key({**params, "seed": 2}, files, None, v)
    assert k != task_key({**params, "fraction": 0.5}, files, None, v)
    assert k != task_key(params, {"scenario": "cd" * 32}, None, v)
    assert k != task_key(params, files, None, {**v, "sumo": "1.29.0"})
    assert k != task_key(params, files, None, {**v, "egress": "0.2.0"})


# --------------------------------------------------------------------------- store, resume, retries




def flaky_runner(task, keep_dir):
    """Fails on the first attempt of every task (a marker file remembers it)."""
    marker = Path(os.environ["EGRESS_TEST_FLAKY"]) / task.key
    if not marker.exists():
        marker.write_text("failed once")
        raise RuntimeError("transient failure")
    return fake_runner(task, keep_dir)


def broken_runner(task, keep_dir):
    if task.policy != BASELINE and task.fraction == 1.0:
        raise RuntimeError(f"always fails: {task.key[:8]}")
    return fake_runner(task, keep_dir)


@pytest.fixture(scope="module")
def threads():
    from distributed import Client

    client = Client(processes=False, n_workers=1, threads_per_worker=2,
                    dashboard_address=None, set_as_default=False)
    yield client
    client.close()


def test_resume_skips_finished_tasks(study, tmp_path, threads):
    out = tmp_path / "out"
    first = run_sweep(study, out, scheduler=threads, progress=False, runner=fake_runner)
    assert (first.finished, first.skipped, first.failed) == (6, 0, [])
    parts = sorted((out / "results").glob("key=*/part.parquet"))
    assert len(parts) == 6 and not list((out / "results").rglob("*.tmp"))

    def must_not_run(task, keep_dir):
        raise AssertionError("a finished task ran again")

    again = run_sweep(study, out, scheduler=threads, progress=False, runner=must_not_run)
    assert (again.finished, again.skipped) == (0, 6)

    victim = parts[2]
    victim.unlink()
    third = run_sweep(study, out, scheduler=threads, progress=False, runner=fake_runner)
    assert (third.finished, third.skipped) == (1, 5)
    res = load_results(out)
    assert len(res) == 6 * 3 and res.groupby("key").size().eq(3).all()
    assert json.loads((out / "sweep.json").read_text())["stored"] == 6
    assert len(pd.read_csv(out / "tasks.csv")) == 6


def test_transient_failures_are_retried(study, tmp_path, threads, monkeypatch):
    monkeypatch.setenv("EGRESS_TEST_FLAKY", str(tmp_path))
    result = run_sweep(study, tmp_path / "out", scheduler=threads, progress=False,
                       runner=flaky_runner)
    assert result.failed == [] and result.finished == 6
    assert load_failures(tmp_path / "out").empty


def test_failures_are_recorded_after_bounded_retries_and_others_finish(study, tmp_path,
                                                                        threads):
    out = tmp_path / "out"
    result = run_sweep(study, out, scheduler=threads, progress=False, runner=broken_runner,
                       retries=2)
    assert len(result.failed) == 2 and result.finished == 4
    failures = load_failures(out)
    assert set(failures["attempts"]) == {3}                  # 1 + 2 retries
    assert failures["message"].str.startswith("always fails").all()
    assert "Traceback" in failures["traceback"].iloc[0]
    assert len(finished_keys(out)) == 4
    # a rerun with a fixed runner finishes them and clears the records
    fixed = run_sweep(study, out, scheduler=threads, progress=False, runner=fake_runner)
    assert (fixed.finished, fixed.skipped) == (2, 4)
    assert load_failures(out).empty


def test_summary_pairs_each_variant_with_its_baseline(study, tmp_path, threads):
    out = tmp_path / "out"
    run_sweep(study, out, scheduler=threads, progress=False, runner=fake_runner)
    table = savings(load_results(out))
    event = table[table["group"] == "event"].set_index("fraction")
    # fake travel time 10 - 2 f + 0.1 seed: the saving is exactly 2 f in every seed
    assert event.loc[0.5, "saving_min"] == pytest.approx(1.0)
    assert event.loc[1.0, "saving_min"] == pytest.approx(2.0)
    assert event.loc[1.0, "ci_low"] == pytest.approx(2.0)     # zero spread
    assert (event["replications"] == 2).all()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_fails_fast(study, tmp_path, capsys):
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.perf_counter()
    with pytest.raises(SchedulerError, match="cannot reach the Dask scheduler"):
        run_sweep(study, tmp_path / "out", scheduler=address, progress=False)
    assert time.perf_counter() - started < 15
    code = cli.main(["-q", "sweep", str(study), "--scheduler", address,
                     "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and address in err


# ------------------------------------------------------------------ real SUMO, real cluster


def test_local_sweep_with_sumo_measures_a_saving(tmp_path, fork_net):
    """Real tasks on the default LocalCluster: every vehicle diverted at fraction 1."""
    path = write_study(tmp_path, fork_net, vehicles=30, headway=1.0, seeds=(1,),
                       fractions=(1.0,))
    result = run_sweep(path, tmp_path / "out", workers=2, progress=False)
    assert result.failed == [] and result.finished == 2
    res = load_results(tmp_path / "out")
    variant = res[(res["policy"] == "divert") & (res["group"] == "event")].iloc[0]
    assert variant["vehicles"] == 30 and variant["addressed"] == 30
    assert variant["complied"] == 30 and variant["teleports"] == 0
    base = res[(res["policy"] == BASELINE) & (res["group"] == "event")].iloc[0]
    assert base["complied"] == 0 and base["arrived"] == 30
    assert 0 < base["mean_travel_time_min"] < 10


def test_a_task_keeps_its_run_folder_only_when_asked(tmp_path, fork_net):
    """run_task as a worker calls it: the same table with and without a kept
    run folder; only a kept one holds SUMO's outputs and the vehicle table."""
    path = write_study(tmp_path, fork_net, vehicles=10, seeds=(1,), fractions=(1.0,))
    task = [t for t in load_sweep(path).tasks if t.policy == "divert"][0]
    kept = run_task(task, tmp_path / "keep")
    folder = tmp_path / "keep" / task.key / "run"
    assert (folder / "vehroutes.xml").is_file() and (folder / "sumo.log").is_file()
    assert not (folder / "edgedata.xml").exists()      # a task reads no edge speeds
    assert len(pd.read_parquet(folder / "vehicles.parquet")) == 10
    plain = run_task(task)
    same = [c for c in kept.columns if not c.endswith("_seconds")]
    pd.testing.assert_frame_equal(kept[same], plain[same])
    assert kept.loc[kept["group"] == "event", "complied"].item() == 10


def test_a_worker_notices_an_input_that_changed_after_it_hashed_it(study):
    from egress.sweep.worker import _check_inputs, _scenario_for

    task = load_sweep(study).tasks[0]
    scen = _scenario_for(task)
    _check_inputs(task, scen)
    _check_inputs(task, scen)                       # the digest is remembered ...
    routes = study.parent / "fork.rou.xml"
    text = routes.read_text()
    routes.write_text(text.replace('depart="3"', 'depart="3.5"'))
    with pytest.raises(SweepError, match=r"routes\[0\]: .* differs from the file"):
        _check_inputs(task, scen)                   # ... until the file changes
    routes.write_text(text)
    _check_inputs(task, scen)
    routes.unlink()
    with pytest.raises(SweepError, match="not found on this worker"):
        _check_inputs(task, scen)


def _start(cmd: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@pytest.mark.slow
def test_killed_worker_loses_nothing(tmp_path, fork_net):
    """A real `dask scheduler` and two `dask worker`s; one is killed mid-sweep."""
    from distributed import Client

    path = write_study(tmp_path, fork_net, vehicles=150, headway=2.0, end=1500,
                       seeds=(1, 2, 3, 4), fractions=(0.5, 1.0), retries=1)
    n_tasks = len(load_sweep(path).tasks)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_start([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                     "--no-dashboard"], tmp_path)]
    try:
        for _ in range(2):
            procs.append(_start([str(BIN / "dask"), "worker", address, "--nworkers", "1",
                                 "--nthreads", "1", "--no-dashboard"], tmp_path))
        with Client(address, timeout="30s", set_as_default=False) as c:
            c.wait_for_workers(2, timeout=60)
        out = tmp_path / "out"

        def killer():
            deadline = time.time() + 60
            while time.time() < deadline and not finished_keys(out):
                time.sleep(0.05)
            _kill(procs[1])

        import threading

        t = threading.Thread(target=killer)
        t.start()
        first = run_sweep(path, out, scheduler=address, progress=False)
        t.join()
        assert procs[1].poll() is not None, "the worker was not killed during the sweep"
        assert 0 < first.finished + len(first.failed) <= n_tasks
        second = run_sweep(path, out, scheduler=address, progress=False)
        assert second.failed == []
        assert second.skipped == first.finished
        res = load_results(out)
        per_key = res.groupby("key").size()
        keys = {t.key for t in load_sweep(path).tasks}
        assert set(per_key.index) == keys                 # every task present ...
        assert (per_key == 3).all()                       # ... exactly once (3 groups each)
        assert len(list((out / "results").glob("key=*/part.parquet"))) == n_tasks
    finally:
        for p in reversed(procs):
            _kill(p)

"""Progress bars in terminals and notebooks, and the Dask dashboard's address."""

from __future__ import annotations

import logging
import sys
import types

from egress import progress
from egress.sweep.runner import dashboard_link


def test_a_bar_shows_in_a_notebook_even_without_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not progress.shown(True)          # a pipe or a log: no bar
    assert not progress.shown(False)

    class ZMQInteractiveShell:               # what a Jupyter kernel's shell is called
        pass

    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: ZMQInteractiveShell()
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert progress.in_notebook()
    assert progress.shown(True) and not progress.shown(False)
    bar = progress.bar(True, total=3, desc="test")
    assert not bar.disable
    bar.close()


def test_the_dashboard_address_of_a_local_cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster, set_as_default=False) as client:
        link = dashboard_link(client)
        assert link is not None and link.startswith("http") and link.endswith("/status")
        assert f":{cluster.scheduler.services['dashboard'].port}/" in link

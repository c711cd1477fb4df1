"""The reporting stage: figures and the self-contained HTML report.

Modules
-------
:mod:`.plots`
    Demand heat maps over S2 cells (``egress plot demand``).
:mod:`.report`
    One HTML file describing a run, evaluation, calibration or sweep folder
    (``egress report``).
"""

from __future__ import annotations

from .plots import plot_demand, plot_demand_scenarios
from .report import write_report

__all__ = ["plot_demand", "plot_demand_scenarios", "write_report"]

"""Reusing finished runs: what ``evaluate-policy --resume`` trusts.

A run folder is reused only when it holds a complete, valid run of exactly the
inputs the evaluation would give it now: the same SUMO options and the same
bytes of network, route and additional files. The run engine records a digest
of those inputs in the folder's ``summary.json`` (``inputs``) when it runs; a
folder whose state is not ``complete`` (running when interrupted, failed,
invalid), whose digest differs, or whose SUMO outputs are missing is run
again. Demand and sign inputs are rebuilt from their seeds first, so a
reused run is one that would come out the same.
"""

from __future__ import annotations

from .. import engine
from ..engine.run import inputs_digest


def reusable(config: engine.RunConfig, digest: str) -> bool:
    """Whether the run folder holds a complete, valid run of exactly these inputs
    (``--resume``): its ``summary.json`` says ``complete`` and records the same
    inputs digest, and SUMO's outputs are there."""
    state = engine.read_state(config.run_dir) or {}
    if state.get("state") != "complete" or state.get("inputs") != digest:
        return False
    needed = ["vehroutes", "statistics", "log"] + (
        ["edgedata"] if config.edgedata_period is not None else [])
    return all(config.output(name).is_file() for name in needed)


__all__ = ["inputs_digest", "reusable"]

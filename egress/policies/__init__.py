"""The policies stage: declared measures, the SUMO inputs that apply them, and
their paired evaluation against the baseline (``egress evaluate-policy``).

Modules
-------
:mod:`.kinds`
    One class per kind of measure, behind a registry (:data:`POLICY_KINDS`).
:mod:`.file`
    Policy files: :func:`load_policies`, :class:`Policy`.
:mod:`.variants`
    The inputs of one variant: signs (rerouters), network patches, signal
    programs.
:mod:`.evaluation`
    :func:`evaluate_policy`: replications, common random numbers, the runs.
:mod:`.comparison`
    Paired savings per group, what each pair compared, the summary table.
:mod:`.figures`
    Savings, savings against compliance, speed-change maps.
"""

from __future__ import annotations

from .comparison import BASELINE, GROUPS, EvaluationResult, format_table, headline
from .evaluation import DEFAULT_FRACTIONS, evaluate_policy
from .file import Policy, check_against_network, load_policies, select
from .kinds import POLICY_KINDS, PolicyKind, register
from .variants import prepare_variant, read_demand

__all__ = ["BASELINE", "DEFAULT_FRACTIONS", "EvaluationResult", "GROUPS", "POLICY_KINDS", "Policy",
           "PolicyKind", "check_against_network", "evaluate_policy", "format_table",
           "headline", "load_policies", "prepare_variant", "read_demand", "register", "select"]

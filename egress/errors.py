"""Exceptions raised by egress.

Two families, because they call for different actions:

* **bad input** (:class:`InputError` and its kin): a file, key, row or flag
  the user gave is wrong. Nothing has run; fix the input. The CLI prints one
  line and exits with code 2 (:data:`EXIT_INPUT`).
* **a run that failed** (:class:`RunError`): SUMO crashed, a run's outputs
  broke a physical invariant, or a sweep task failed. The inputs were valid;
  the result is not. The CLI prints one line and exits with code 3
  (:data:`EXIT_RUN`).

Every error derives from :class:`EgressError` and from the built-in
exception that matches it, so ``except ValueError`` keeps working in
notebooks.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Exit code of the ``egress`` command for bad input.
EXIT_INPUT = 2
#: Exit code of the ``egress`` command for a run that failed.
EXIT_RUN = 3


class EgressError(Exception):
    """Base class of every error egress raises on purpose."""


class InputError(EgressError, ValueError):
    """An input file, key or row is invalid.

    Parameters
    ----------
    source : str
        The file (or object) the problems were found in.
    problems : iterable of str
        One message per problem, each naming the key, element or row.
    """

    def __init__(self, source: str, problems: Iterable[str] | str):
        if isinstance(problems, str):
            problems = [problems]
        self.source = str(source)
        self.problems = list(problems)
        super().__init__(self._message())

    def _message(self) -> str:
        if len(self.problems) == 1:
            return f"{self.source}: {self.problems[0]}"
        listed = "; ".join(self.problems)
        return f"{self.source}: {len(self.problems)} problems: {listed}"


class ScenarioError(InputError):
    """A scenario file is missing, malformed or inconsistent."""


class NetworkError(InputError):
    """A road network is missing, malformed or lacks a needed path."""


class PolicyError(InputError):
    """A policy file or policy is invalid, or cannot be applied to the demand."""


class SweepError(InputError):
    """A sweep file is invalid, or a task's inputs differ from the ones it was made for."""


class ReportError(InputError):
    """A folder holds nothing a report can describe."""


class SchedulerError(EgressError, ConnectionError):
    """The Dask scheduler of a sweep cannot be reached."""


class MissingFileError(EgressError, FileNotFoundError):
    """A file named by the user does not exist."""

    def __init__(self, path: str, what: str = "file"):
        self.path = str(path)
        super().__init__(f"{path}: {what} not found")


class RunError(EgressError, RuntimeError):
    """A run failed: its inputs were valid, but it produced no valid result."""


class SumoError(RunError):
    """A SUMO program failed; the message ends with the tail of its error output."""


class InvalidRunError(RunError):
    """A run's outputs broke a physical invariant (see :mod:`egress.engine.invariants`).

    Parameters
    ----------
    run_dir : str
        The run folder.
    problems : iterable of str
        One message per broken invariant.
    """

    def __init__(self, run_dir: str, problems: Iterable[str]):
        self.run_dir = str(run_dir)
        self.problems = list(problems)
        super().__init__(f"{run_dir}: invalid run: " + "; ".join(self.problems))


class Problems:
    """Collects validation problems so that all are reported together.

    Examples
    --------
    >>> p = Problems("scenario.toml")
    >>> p.add("simulation.seed: expected an integer, got 'x'")
    >>> p.raise_if_any(ScenarioError)  # doctest: +SKIP
    """

    def __init__(self, source: str):
        self.source = str(source)
        self.items: list[str] = []

    def add(self, message: str) -> None:
        """Record one problem."""
        self.items.append(message)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, kind: type[InputError] = InputError) -> None:
        """Raise one error of type `kind` listing every recorded problem."""
        if self.items:
            raise kind(self.source, self.items)

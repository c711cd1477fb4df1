"""Exceptions raised by egress.

Every error a user can cause derives from :class:`EgressError` and from the
built-in exception that matches it, so ``except ValueError`` keeps working in
notebooks. The CLI turns an :class:`EgressError` into one line on stderr and
exit code 2.
"""

from __future__ import annotations

from collections.abc import Iterable


class EgressError(Exception):
    """Base class of all errors that a user's input can cause."""


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


class MissingFileError(EgressError, FileNotFoundError):
    """A file named by the user does not exist."""

    def __init__(self, path: str, what: str = "file"):
        self.path = str(path)
        super().__init__(f"{path}: {what} not found")


class SumoError(EgressError, RuntimeError):
    """A SUMO program failed; the message ends with the tail of its error output."""


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

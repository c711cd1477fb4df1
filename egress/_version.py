"""The version of egress (one place; the package, the CLI and every result record read it)."""

__version__ = "0.1.0"

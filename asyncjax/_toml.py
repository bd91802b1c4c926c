"""The one TOML reader: ``tomllib`` from Python 3.11, the ``tomli`` backport before it."""

from __future__ import annotations

try:
    from tomllib import TOMLDecodeError, loads
except ModuleNotFoundError:  # Python 3.10 (a test hides tomllib to run this branch)
    from tomli import TOMLDecodeError, loads

load_toml = loads
"""Parses TOML text into a dict (``tomllib.loads``)."""

TOMLError = TOMLDecodeError
"""What `load_toml` raises on malformed text."""

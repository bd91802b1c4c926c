"""The one TOML reader: ``tomllib`` from Python 3.11, the ``tomli`` backport before it."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from tomllib import TOMLDecodeError, loads
else:  # pragma: no cover - exercised by a test that hides tomllib
    from tomli import TOMLDecodeError, loads

load_toml = loads
"""Parses TOML text into a dict (``tomllib.loads``)."""

TOMLError = TOMLDecodeError
"""What :func:`load_toml` raises on malformed text."""

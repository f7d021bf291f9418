"""Argument checks shared by the ACD's numeric models: each module raises its own error class."""

from __future__ import annotations

import math

from cti.errors import CtiError


def require_finite(name: str, value: float, error: type[CtiError]) -> None:
    if not math.isfinite(value):
        raise error(f"{name} must be a finite number, got {value!r}")


def require_non_negative(name: str, value: float, error: type[CtiError]) -> None:
    require_finite(name, value, error)
    if value < 0:
        raise error(f"{name} must not be negative, got {value!r}")


def require_positive(name: str, value: float, error: type[CtiError]) -> None:
    require_finite(name, value, error)
    if value <= 0:
        raise error(f"{name} must be positive, got {value!r}")

"""Argument checks shared by the public functions.

Each helper raises ``TypeError`` for a value of the wrong kind and ``ValueError``
for a value of the right kind that breaks a rule. Messages name the argument as
the caller wrote it, state the rule, show what was received and say what to do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor


def describe(value: Any) -> str:
    """Return a short description of ``value`` for an error message."""
    if isinstance(value, Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Check that ``value`` is an integer, at least ``minimum`` when given."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {describe(value)}.")
    if minimum is not None and value < minimum:
        raise ValueError(
            f"{name} must be at least {minimum}, got {value}. "
            f"Pass an integer >= {minimum}."
        )
    return value


def check_positive_float(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Check that ``value`` is a finite real number, positive (or zero if allowed)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {describe(value)}.")
    number = float(value)
    bound_ok = number >= 0.0 if allow_zero else number > 0.0
    if not math.isfinite(number) or not bound_ok:
        rule = "non-negative" if allow_zero else "positive"
        raise ValueError(
            f"{name} must be a finite {rule} number, got {value!r}. "
            f"Pass a {rule} float."
        )
    return number


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Check that ``value`` is one of the strings in ``choices``."""
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        listed = ", ".join(repr(option) for option in options)
        raise ValueError(f"{name} must be one of {listed}, got {describe(value)}.")
    return value


def check_tensor(
    name: str,
    value: Any,
    *,
    ndim: int | tuple[int, ...] | None = None,
    floating: bool = True,
    finite: bool = True,
) -> Tensor:
    """Check that ``value`` is a tensor with an allowed number of dimensions.

    ``floating`` requires a floating dtype and ``finite`` rejects NaN and
    infinite entries.
    """
    if not isinstance(value, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {describe(value)}. "
            "Convert it with torch.as_tensor."
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if value.ndim not in allowed:
            expected = " or ".join(str(n) for n in allowed)
            raise ValueError(
                f"{name} must have {expected} dimensions, got shape "
                f"{tuple(value.shape)}."
            )
    if floating and not value.is_floating_point():
        raise TypeError(
            f"{name} must have a floating dtype, got {value.dtype}. "
            "Convert it with .float() or .double()."
        )
    if finite:
        check_finite(name, value)
    return value


def check_finite(name: str, value: Tensor) -> Tensor:
    """Check that a floating tensor has no NaN or infinite entries."""
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(
            f"{name} contains {bad} NaN or infinite entries "
            f"(shape {tuple(value.shape)}). Remove or replace them first."
        )
    return value


def check_same_dtype_device(name: str, value: Tensor, reference: Tensor) -> None:
    """Check that ``value`` has the dtype and device of ``reference``."""
    if value.dtype != reference.dtype:
        raise TypeError(
            f"{name} has dtype {value.dtype} but the model uses {reference.dtype}. "
            f"Convert it with .to({reference.dtype})."
        )
    if value.device != reference.device:
        raise ValueError(
            f"{name} is on device {value.device} but the model is on "
            f"{reference.device}. Move it with .to('{reference.device}')."
        )

"""Continuous-time limits of residual networks: neural ODE, linear ODE, SDE.

:func:`fit_limit` maps a network, raw weights or a run folder to its limit;
the limit classes integrate it with torchdiffeq or torchsde.
"""

from .fitting import fit_limit, roughness_ratio
from .ode import LinearODELimit, NeuralODELimit
from .paths import EffectivePath, PiecewiseFunction
from .results import LimitSolution, NoLimitError, RegimeEvidence
from .sde import LinearQuadraticSDELimit

__all__ = [
    "EffectivePath",
    "LimitSolution",
    "LinearODELimit",
    "LinearQuadraticSDELimit",
    "NeuralODELimit",
    "NoLimitError",
    "PiecewiseFunction",
    "RegimeEvidence",
    "fit_limit",
    "roughness_ratio",
]

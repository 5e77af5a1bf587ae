"""Reduced-form limit models: the deep limit of a residual network, trained.

A :class:`ReducedLimitModel` is a neural ODE, linear ODE or linear-quadratic
Ito SDE on :math:`t \\in [0, 1]` whose weights :math:`A(t), b(t)` (and the
diffusion) are expanded in ``K`` basis functions. It trains through
:func:`deeplimits.train` like any network, is warm-started from a trained
:class:`~deeplimits.ResNet` by least-squares projection
(:meth:`ReducedLimitModel.from_network`) and samples back into a network of
any depth (:meth:`ReducedLimitModel.to_resnet`).
"""

from .basis import (
    BASIS_NAMES,
    Basis,
    ChebyshevBasis,
    FourierBasis,
    LegendreBasis,
    PiecewiseLinearBasis,
    get_basis,
)
from .model import ReducedLimitModel, default_steps
from .projection import project_onto_basis
from .resolution import choose_sampling_depth, compare_resolutions
from .run import ReduceResult, reduce_run

__all__ = [
    "BASIS_NAMES",
    "Basis",
    "ChebyshevBasis",
    "FourierBasis",
    "LegendreBasis",
    "PiecewiseLinearBasis",
    "ReduceResult",
    "ReducedLimitModel",
    "choose_sampling_depth",
    "compare_resolutions",
    "default_steps",
    "get_basis",
    "project_onto_basis",
    "reduce_run",
]

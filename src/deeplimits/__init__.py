"""deeplimits: deep limits of residual networks.

Train fully connected residual networks across depths, measure how their
trained weights scale with depth, and map them to their continuous-time limit
(neural ODE, linear ODE or linear-quadratic Ito SDE).
"""

from .activations import Activation, get_activation
from .compare import compare, compare_sweep
from .data import Dataset, digits, from_tensors, load_dataset, mnist, synthetic_ode
from .inits import FractionalBrownian, Smooth
from .limits import (
    LimitSolution,
    LinearODELimit,
    LinearQuadraticSDELimit,
    NeuralODELimit,
    NoLimitError,
    RegimeEvidence,
    fit_limit,
)
from .network import ResNet, effective_weights, layer_times
from .reduced import ReducedLimitModel
from .scaling import (
    PowerLawFit,
    RegimeThresholds,
    ScalingResult,
    estimate_scaling,
    fit_power_law,
)
from .sweep import (
    MissingWeightsWarning,
    RunConfigError,
    SweepResult,
    depth_sweep,
    finished_depths,
    geometric_depths,
    load_sweep,
    missing_weights,
)
from .training import (
    DivergenceWarning,
    IdenticalReplicasWarning,
    TrainResult,
    train,
)

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "Dataset",
    "DivergenceWarning",
    "FractionalBrownian",
    "IdenticalReplicasWarning",
    "LimitSolution",
    "LinearODELimit",
    "LinearQuadraticSDELimit",
    "MissingWeightsWarning",
    "NeuralODELimit",
    "NoLimitError",
    "PowerLawFit",
    "ReducedLimitModel",
    "RegimeEvidence",
    "RegimeThresholds",
    "ResNet",
    "RunConfigError",
    "ScalingResult",
    "Smooth",
    "SweepResult",
    "TrainResult",
    "compare",
    "compare_sweep",
    "depth_sweep",
    "digits",
    "effective_weights",
    "estimate_scaling",
    "fit_limit",
    "finished_depths",
    "fit_power_law",
    "from_tensors",
    "geometric_depths",
    "get_activation",
    "layer_times",
    "load_dataset",
    "load_sweep",
    "missing_weights",
    "mnist",
    "synthetic_ode",
    "train",
    "__version__",
]

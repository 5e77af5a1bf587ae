"""deeplimits: deep limits of residual networks.

Train fully connected residual networks across depths, measure how their
trained weights scale with depth, and map them to their continuous-time limit
(neural ODE, linear ODE or linear-quadratic Ito SDE).
"""

from .activations import Activation, get_activation
from .inits import FractionalBrownian, Smooth
from .network import ResNet, effective_weights, layer_times

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "FractionalBrownian",
    "ResNet",
    "Smooth",
    "effective_weights",
    "get_activation",
    "layer_times",
    "__version__",
]

"""Fit the deep limit of one trained network and integrate it.

Trains a ResNet on the built-in synthetic data for a few epochs, lets
fit_limit choose the limit from the roughness of the weights, then compares
the network's hidden states with the limit's solution.

Run: python examples/limit_fit_network.py
"""

import torch

from deeplimits import ResNet
from deeplimits.compare import compare
from deeplimits.data import synthetic_ode
from deeplimits.limits import NoLimitError, fit_limit
from deeplimits.training import train

torch.set_num_threads(1)
data = synthetic_ode(dim=10, seed=0)
net = ResNet(10, 64, init="smooth", init_scale=1.0, seed=0)
train(net, data, epochs=10, progress=False)

try:
    limit = fit_limit(net)
except NoLimitError as error:
    print("no limit:", error.evidence.reasons)
    limit = fit_limit(net, "neural-ode")
print(type(limit).__name__, "-", " ".join(limit.evidence.reasons))

solution = limit.integrate(data.x_test[:4].double(), rtol=1e-8, atol=1e-10)
print("states", tuple(solution.ys.shape), "evaluations", solution.nfe)

result = compare(net, limit, data.x_test, data.y_test)
print(f"max_k |h_k - H(t_k)| / |x| = {result.trajectory_error:.2e}")
print(f"test loss: network {result.network_loss:.3e}, limit {result.limit_loss:.3e}")

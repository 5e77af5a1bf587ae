"""Watch networks of growing depth converge to their limit.

Networks are the Euler discretisations of one smooth neural ODE,
A_k = Abar(k/L), delta_k = 1/L, so they share a limit. compare_sweep measures
max_k |h_k - H(t_k)| / |x| at each depth and fits error ~ L^-eta; Euler is
first order, so eta is close to 1. The plots go to limit_sweep_plots/.

Run: python examples/limit_sweep_convergence.py
"""

import math

import torch

from deeplimits import ResNet
from deeplimits.compare import compare_sweep, plot_error_vs_depth, plot_trajectories
from deeplimits.limits import NeuralODELimit

torch.set_num_threads(1)
torch.manual_seed(0)
dim = 4
M0, M1 = torch.randn(2, dim, dim, dtype=torch.float64)
bias = torch.randn(dim, dtype=torch.float64) * 0.3


def abar(t: torch.Tensor) -> torch.Tensor:
    return M0 * torch.cos(2 * math.pi * t)[:, None, None] + M1 * t[:, None, None]


fine = torch.arange(1024, dtype=torch.float64) / 1024
limit = NeuralODELimit(
    abar(fine),
    bias.expand(1024, dim).clone(),
    torch.ones(1024, dtype=torch.float64),
    interpolation="linear",
)
networks = {}
for depth in (8, 16, 32, 64, 128):
    knots = torch.arange(depth, dtype=torch.float64) / depth
    networks[depth] = ResNet.from_weights(
        abar(knots),
        bias.expand(depth, dim).clone(),
        torch.full((depth,), 1.0 / depth, dtype=torch.float64),
    )

x = torch.randn(32, dim, dtype=torch.float64)
result = compare_sweep(networks, limit, x)
for depth, comparison in result.comparisons.items():
    print(f"L = {depth:4d}: error {comparison.trajectory_error:.3e}")
rate = result.rate
print(f"eta = {rate.eta:.3f}, 95% interval [{rate.ci_low:.3f}, {rate.ci_high:.3f}]")
plot_trajectories(networks, limit, x, "limit_sweep_plots/trajectories.png")
plot_error_vs_depth(result, "limit_sweep_plots/error_vs_depth.png")

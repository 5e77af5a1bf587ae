"""Train a reduced-form limit model, warm-start one from a ResNet, and sample
it back into networks of several depths.

Run: python examples/reduced_quickstart.py  (about a minute on one CPU core)
"""

import torch

from deeplimits import ResNet
from deeplimits.data import synthetic_ode
from deeplimits.reduced import ReducedLimitModel
from deeplimits.training import train

torch.set_num_threads(1)
data = synthetic_ode(dim=10, seed=0)

# 1. A neural ODE with weights in 8 Legendre polynomials, trained with the
#    adjoint method through the ordinary training loop.
model = ReducedLimitModel(10, basis="legendre", K=8, seed=0)  # 28 rk4 steps
result = train(model, data, epochs=5, progress=False)
print(
    f"reduced model: {model.num_parameters()} parameters, "
    f"test MSE {result.test_loss[-1]:.3e}"
)

# 2. Warm start: project a trained depth-64 network onto the basis.
net = ResNet(10, 64, seed=0)
train(net, data, epochs=5, progress=False)
warm = ReducedLimitModel.from_network(net, "legendre", 8)
with torch.no_grad():
    net_mse = float((net(data.x_test) - data.y_test).square().mean())
    warm_mse = float((warm(data.x_test) - data.y_test).square().mean())
print(f"network depth 64: test MSE {net_mse:.3e}; projection: {warm_mse:.3e}")

# 3. Back to networks: the depth-L network is explicit Euler with step 1/L,
#    so its output approaches the model's at rate 1/L.
#    The reference is the flow solved accurately, with 512 rk4 steps.
x = data.x_test[:64]
model.steps = 512
with torch.no_grad():
    target = model(x)
    for depth in (4, 16, 64, 256):
        error = float((model.to_resnet(depth)(x) - target).norm() / target.norm())
        print(f"depth {depth:4d}: relative distance to the flow {error:.2e}")

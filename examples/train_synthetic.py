"""Train residual networks with replicas on the synthetic ODE data.

Run: python examples/train_synthetic.py   (about 10 s on one CPU thread)
"""

import torch

from deeplimits import ResNet
from deeplimits.data import synthetic_ode
from deeplimits.training import train

torch.set_num_threads(1)

data = synthetic_ode(dim=10, seed=0)
print(data.description)

# Four independent networks of depth 32, trained in one batched computation.
net = ResNet(10, 32, activation="tanh", delta="shared", replicas=4, seed=0)
result = train(net, data, lr=1e-2, epochs=20, patience=5, seed=0, progress=False)

print(f"stopped by {result.stop_reason!r} after {result.epochs_run} epochs")
print(f"train loss {result.initial_train_loss:.3e} -> {result.train_loss[-1]:.3e}")
print(f"test loss  {result.test_loss[-1]:.3e}")
print(
    "final train loss per replica:",
    [f"{v:.3e}" for v in result.final_train_loss_per_replica],
)
print("trained |delta| per replica:", net.effective_delta()[:, 0].tolist())

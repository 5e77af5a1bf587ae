"""Train on your own tensors, with a ResNet or any other nn.Module.

Run: python examples/train_user_tensors.py   (a few seconds)
"""

import torch
from torch import nn

from deeplimits import ResNet
from deeplimits.data import from_tensors
from deeplimits.training import train

torch.set_num_threads(1)
generator = torch.Generator().manual_seed(0)

# Regression: learn a rotation followed by tanh in R^3.
x = torch.randn(400, 3, generator=generator)
rotation = torch.linalg.matrix_exp(torch.tensor([[0.0, 1, 0], [-1, 0, 0], [0, 0, 0]]))
data = from_tensors(x, torch.tanh(x @ rotation.T), test_fraction=0.25, seed=0)
net = ResNet(3, 20, init="xavier", init_scale=1.0, seed=0)
result = train(net, data, lr=1e-2, epochs=30, progress=False)
print(f"ResNet: test loss {result.test_loss[-1]:.2e} ({result.stop_reason})")

# Classification with integer labels, and a model that is not a ResNet, so
# its two outputs set the width of the one-hot targets (by default it is
# the width of x, which a ResNet needs).
labels = (x[:, 0] * x[:, 1] > 0).long()
classes = from_tensors(x, labels, seed=0, target_width=2)
mlp = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 2))
result = train(mlp, classes, lr=1e-2, epochs=40, progress=False)
print(
    f"MLP: test accuracy {100 * result.test_accuracy[-1]:.1f}% ({result.stop_reason})"
)

# Bad input is rejected with a message that names the problem.
try:
    from_tensors(x, torch.full((400, 1), float("nan")))
except ValueError as error:
    print("rejected:", error)

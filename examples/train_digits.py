"""Classify scikit-learn's 8x8 digits with a residual network of width 10.

The digits ship with scikit-learn, so nothing is downloaded. The images are
reduced to 10 features by PCA fitted on the training split and the targets are
one-hot vectors, so the network's output argmax is the predicted class.

Run: python examples/train_digits.py   (about 15 s on one CPU thread)
"""

import torch

from deeplimits import ResNet
from deeplimits.data import digits
from deeplimits.training import train

torch.set_num_threads(1)

data = digits(dim=10, seed=0)
print(data.description)

net = ResNet(10, 16, activation="tanh", init="xavier", init_scale=1.0, seed=0)
result = train(net, data, lr=1e-2, epochs=40, patience=5, progress=False)

print(f"stopped by {result.stop_reason!r} after {result.epochs_run} epochs")
print(f"test loss {result.test_loss[-1]:.4f}")
print(f"train accuracy {100 * result.train_accuracy[-1]:.1f}%")
print(f"test accuracy  {100 * result.test_accuracy[-1]:.1f}%")

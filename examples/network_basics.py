"""Build residual networks, check the fused kernel, save and reload.

Run with ``python examples/network_basics.py``; it finishes in a few seconds.
"""

import tempfile
from pathlib import Path

import torch

from deeplimits import FractionalBrownian, ResNet, effective_weights
from deeplimits.kernel import reference_states

torch.manual_seed(0)
x = torch.randn(8, 10, dtype=torch.float64)

# A network with a shared delta (initialised to 1/L) and 4 replicas.
net = ResNet(
    10,
    128,
    delta="shared",
    init="xavier",
    init_scale=1.0,
    replicas=4,
    seed=0,
    dtype=torch.float64,
)
print(net)
print("output", tuple(net(x).shape), "states", tuple(net.hidden_states(x).shape))

# The fused kernel gives the same states as a plain autograd loop.
A, b, delta = net.A, net.b, net.effective_delta()
with torch.no_grad():
    fused = net.hidden_states(x).transpose(0, 1)
    plain = reference_states(x.expand(4, -1, -1), A, b, delta, net.activation)
print("max difference to the autograd loop:", float((fused - plain).abs().max()))

# Fractional Brownian weights with Hurst index 0.7: the effective path
# sum_k delta_k A_k is rougher than a smooth curve, smoother than Brownian motion.
rough = ResNet(
    10, 256, delta="none", init=FractionalBrownian(hurst=0.7), init_scale=1.0, seed=1
)
effective_A, _ = effective_weights(rough)
increments = effective_A.detach().flatten(1).norm(dim=1)
print(
    "mean increment norm",
    float(increments.mean()),
    "(about 256^-0.7 =",
    round(256**-0.7, 4),
    ")",
)

# Save to safetensors and load back.
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "net.safetensors"
    net.save(path)
    loaded = ResNet.load(path)
    print("reloaded output matches:", torch.equal(loaded(x), net(x)))

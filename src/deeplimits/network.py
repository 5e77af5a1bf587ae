r"""The fully connected residual network and its storage format.

.. math::

    h_{k+1} = h_k + \delta_k\, \sigma(A_k h_k + b_k), \qquad k = 0, \dots, L-1,
    \qquad h_0 = x \in \mathbb{R}^d,

with layer times :math:`t_k = k/L`. The weights are registered parameters:
``A`` of shape ``(L, d, d)``, ``b`` of shape ``(L, d)``, and with ``R > 1``
replicas a leading axis ``R`` on both, so that ``R`` independent networks train
in one batched computation.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ._checks import (
    check_choice,
    check_finite,
    check_int,
    check_positive_float,
    check_same_dtype_device,
    check_tensor,
    describe,
)
from ._io import load_tensors, save_tensors
from .activations import ACTIVATION_NAMES, Activation, get_activation
from .inits import InitSpec, init_name, initial_weights
from .kernel import fused_output, fused_states

__all__ = ["ResNet", "DELTA_MODES"]

DELTA_MODES: tuple[str, ...] = ("none", "shared", "per-layer")
_FORMAT_VERSION = "1"


class ResNet(nn.Module):
    r"""Residual network :math:`h_{k+1} = h_k + \delta_k \sigma(A_k h_k + b_k)`.

    The forward and backward passes run through a fused kernel
    (:mod:`deeplimits.kernel`), so depth costs a loop of small matrix products
    and no autograd graph.

    Args:
        dim: Width :math:`d`.
        depth: Number of layers :math:`L \ge 1`.
        activation: ``"tanh"``, ``"relu"``, ``"identity"``, ``"gelu"``,
            ``"softplus-centred"``, an :class:`~deeplimits.activations.Activation`
            or a callable.
        delta: ``"none"`` (:math:`\delta_k = 1`), ``"shared"`` (one trainable
            scalar, used as :math:`|\delta|`, initialised to :math:`1/L`) or
            ``"per-layer"`` (one signed trainable scalar per layer, initialised
            :math:`N(0, L^{-2})`).
        init: ``"xavier"``, ``"xavier-depth"``, ``"diffusive"``, ``"smooth"``,
            ``"fbm"``, ``"zero"``, or :class:`~deeplimits.inits.Smooth` /
            :class:`~deeplimits.inits.FractionalBrownian` (see
            :mod:`deeplimits.inits`).
        init_scale: Scale ``s`` of the initialisation.
        replicas: Number ``R`` of independent networks. With ``R = 1`` the
            parameters have no replicas axis.
        seed: Seed of the initialisation; ``None`` draws from torch's global
            generator.
        dtype: Floating dtype of the parameters.
        device: Device of the parameters.

    Shapes:
        ``forward``: ``(batch, d) -> (batch, d)``; with replicas
        ``(batch, d)`` or ``(R, batch, d)`` ``-> (R, batch, d)``.

    Example:
        >>> import torch
        >>> net = ResNet(4, 16, seed=0)
        >>> net(torch.zeros(3, 4)).shape
        torch.Size([3, 4])
        >>> net.hidden_states(torch.zeros(3, 4)).shape
        torch.Size([17, 3, 4])
    """

    A: nn.Parameter
    b: nn.Parameter

    def __init__(
        self,
        dim: int,
        depth: int,
        *,
        activation: str | Activation | Callable[[Tensor], Tensor] = "tanh",
        delta: str = "shared",
        init: InitSpec = "xavier-depth",
        init_scale: float = 0.01,
        replicas: int = 1,
        seed: int | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        self.dim = check_int("dim", dim, minimum=1)
        self.depth = check_int("depth", depth, minimum=1)
        self.replicas = check_int("replicas", replicas, minimum=1)
        self.activation = get_activation(activation)
        self.delta_mode = check_choice("delta", delta, DELTA_MODES)
        self.init = init_name(init)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(
                f"dtype must be a floating torch.dtype, got {describe(dtype)}. "
                "Use torch.float32 or torch.float64."
            )
        if seed is not None:
            check_int("seed", seed)
        generator = torch.Generator()
        generator.manual_seed(seed if seed is not None else int(torch.seed() % 2**63))

        A, b = initial_weights(
            init,
            replicas=self.replicas,
            depth=self.depth,
            dim=self.dim,
            scale=init_scale,
            generator=generator,
        )
        delta_value = self._initial_delta(generator)
        if not self.has_replicas:
            A, b = A[0], b[0]
            delta_value = None if delta_value is None else delta_value[0]
        self.A = nn.Parameter(A.to(dtype=dtype, device=device))
        self.b = nn.Parameter(b.to(dtype=dtype, device=device))
        if delta_value is None:
            self.register_parameter("delta", None)
        else:
            self.delta = nn.Parameter(delta_value.to(dtype=dtype, device=device))

    def _initial_delta(self, generator: torch.Generator) -> Tensor | None:
        shape_shared = (self.replicas,)
        if self.delta_mode == "shared":
            return torch.full(shape_shared, 1.0 / self.depth, dtype=torch.float64)
        if self.delta_mode == "per-layer":
            noise = torch.randn(
                self.replicas, self.depth, generator=generator, dtype=torch.float64
            )
            return noise / self.depth
        return None

    @property
    def has_replicas(self) -> bool:
        """Whether the parameters carry a leading replicas axis (``R > 1``)."""
        return self.replicas > 1

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, depth={self.depth}, activation={self.activation.name!r}, "
            f"delta={self.delta_mode!r}, replicas={self.replicas}"
        )

    def effective_delta(self) -> Tensor:
        r"""Return the layer scales :math:`\delta_k` used in the forward pass.

        Returns:
            ``(L,)``, or ``(R, L)`` with replicas: :math:`|\delta|` repeated for
            ``"shared"``, the signed values for ``"per-layer"``, ones for
            ``"none"``.
        """
        shape = (self.replicas, self.depth)
        if self.delta_mode == "none":
            value = self.A.new_ones(shape)
        elif self.delta_mode == "shared":
            value = self.delta.abs().reshape(self.replicas, 1).expand(shape)
        else:
            value = self.delta.reshape(shape)
        return value if self.has_replicas else value[0]

    def _batched_weights(self) -> tuple[Tensor, Tensor, Tensor]:
        A = self.A if self.has_replicas else self.A.unsqueeze(0)
        b = self.b if self.has_replicas else self.b.unsqueeze(0)
        delta = self.effective_delta()
        delta = delta if self.has_replicas else delta.unsqueeze(0)
        return A, b, delta

    def _batched_input(self, x: Any) -> Tensor:
        check_tensor("x", x, ndim=(2, 3) if self.has_replicas else 2, finite=False)
        check_same_dtype_device("x", x, self.A)
        check_finite("x", x)
        if x.shape[-1] != self.dim:
            raise ValueError(
                f"x must have {self.dim} features in its last dimension to match "
                f"dim={self.dim}, got shape {tuple(x.shape)}."
            )
        if x.ndim == 2:
            return x.unsqueeze(0).expand(self.replicas, -1, -1).contiguous()
        if x.shape[0] != self.replicas:
            raise ValueError(
                f"x with a replicas axis must have shape ({self.replicas}, batch, "
                f"{self.dim}), got {tuple(x.shape)}. Pass (batch, {self.dim}) to "
                "feed the same inputs to every replica."
            )
        return x.contiguous()

    def hidden_states(self, x: Tensor) -> Tensor:
        """Return all states :math:`h_0, \\dots, h_L`.

        Returns:
            ``(L + 1, batch, d)``, or ``(R, L + 1, batch, d)`` with replicas.
        """
        states = fused_states(
            self._batched_input(x), *self._batched_weights(), self.activation
        )
        if self.has_replicas:
            return states.transpose(0, 1)
        return states[:, 0]

    def forward(self, x: Tensor) -> Tensor:
        """Return the output :math:`h_L`: ``(batch, d)`` or ``(R, batch, d)``."""
        output = fused_output(
            self._batched_input(x), *self._batched_weights(), self.activation
        )
        return output if self.has_replicas else output[0]

    def replica(self, index: int) -> ResNet:
        """Return a copy of replica ``index`` as a network without replicas axis."""
        check_int("index", index)
        if not -self.replicas <= index < self.replicas:
            raise ValueError(
                f"index must lie in [0, {self.replicas}) for a network with "
                f"{self.replicas} replicas, got {index}."
            )
        if not self.has_replicas:
            return self._rebuild(self.A, self.b, self.delta)
        delta = None if self.delta is None else self.delta[index]
        return self._rebuild(self.A[index], self.b[index], delta)

    def _rebuild(self, A: Tensor, b: Tensor, delta: Tensor | None) -> ResNet:
        with torch.no_grad():
            return ResNet.from_weights(
                A.detach().clone(),
                b.detach().clone(),
                None if delta is None else delta.detach().clone(),
                activation=self.activation,
                delta_mode=self.delta_mode,
            )

    @classmethod
    def from_weights(
        cls,
        A: Tensor,
        b: Tensor,
        delta: Tensor | float | None = None,
        *,
        activation: str | Activation | Callable[[Tensor], Tensor] = "tanh",
        delta_mode: str | None = None,
    ) -> ResNet:
        r"""Wrap weights that came from elsewhere in a :class:`ResNet`.

        Args:
            A: ``(L, d, d)`` or ``(R, L, d, d)``, in the orientation
                :math:`z_k = A_k h_k + b_k`.
            b: ``(L, d)`` or ``(R, L, d)``.
            delta: ``None`` for ``"none"``; a scalar (or ``(R,)``) for
                ``"shared"``, used as :math:`|\delta|`; ``(L,)`` (or ``(R, L)``)
                for ``"per-layer"``.
            activation: As in :class:`ResNet`.
            delta_mode: Overrides the mode inferred from ``delta``'s shape.

        The network takes the dtype and device of ``A``.

        Raises:
            ValueError: for shapes that do not fit together, or NaN/inf weights.
        """
        check_tensor("A", A, ndim=(3, 4))
        replicated = A.ndim == 4
        replicas = A.shape[0] if replicated else 1
        depth, dim = A.shape[-3], A.shape[-1]
        if replicated and replicas == 1:
            raise ValueError(
                "A with a replicas axis must have at least 2 replicas, got shape "
                f"{tuple(A.shape)}. Drop the leading axis for a single network."
            )
        if A.shape[-2] != dim:
            raise ValueError(
                f"A must be square in its last two axes, got {tuple(A.shape)}."
            )
        expected_b = (replicas, depth, dim) if replicated else (depth, dim)
        check_tensor("b", b)
        if tuple(b.shape) != expected_b:
            raise ValueError(
                f"b must have shape {expected_b} to match A of shape "
                f"{tuple(A.shape)}, got {tuple(b.shape)}."
            )
        check_same_dtype_device("b", b, A)
        delta_tensor, mode = _infer_delta(
            delta, delta_mode, A, replicas, depth, replicated
        )

        net = cls(
            dim,
            depth,
            activation=activation,
            delta=mode,
            init="zero",
            replicas=replicas,
            seed=0,
            dtype=A.dtype,
            device=A.device,
        )
        with torch.no_grad():
            net.A.copy_(A)
            net.b.copy_(b)
            if delta_tensor is not None:
                net.delta.copy_(delta_tensor)
        return net

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the weights to a safetensors file (tensors ``A``, ``b``, ``delta``).

        ``delta`` is the raw parameter (ones of shape ``(L,)`` for ``"none"``).
        The activation name, delta mode and sizes go into the file's metadata.
        The write is atomic.
        """
        delta = self.delta if self.delta is not None else self.A.new_ones(self.depth)
        metadata = {
            "format": "deeplimits.ResNet",
            "format_version": _FORMAT_VERSION,
            "activation": self.activation.name,
            "delta_mode": self.delta_mode,
            "dim": str(self.dim),
            "depth": str(self.depth),
            "replicas": str(self.replicas),
            "init": self.init,
        }
        save_tensors(path, {"A": self.A, "b": self.b, "delta": delta}, metadata)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        activation: str | Activation | Callable[[Tensor], Tensor] | None = None,
        device: str | torch.device | None = None,
    ) -> ResNet:
        """Load a network written by :meth:`save` (safetensors, never pickle).

        Args:
            path: The file.
            activation: Needed for a network saved with a user activation,
                whose function cannot be stored; overrides the stored name.
            device: Where to put the weights.

        Raises:
            FileNotFoundError: if the file is missing.
            ValueError: if it lacks ``A``, ``b``, ``delta`` or the metadata.
        """
        tensors, metadata = load_tensors(path, device=device)
        missing = [name for name in ("A", "b", "delta") if name not in tensors]
        for key in ("activation", "delta_mode"):
            if key not in metadata:
                missing.append(f"metadata[{key!r}]")
        if missing:
            raise ValueError(
                f"{os.fspath(path)!r} is not a deeplimits network file: missing "
                f"{', '.join(missing)}. Save networks with ResNet.save."
            )
        name = metadata["activation"]
        if activation is None and name not in ACTIVATION_NAMES:
            raise ValueError(
                f"{os.fspath(path)!r} was saved with the user activation {name!r}, "
                "whose function is not stored. Pass activation=... to ResNet.load."
            )
        mode = metadata["delta_mode"]
        delta = None if mode == "none" else tensors["delta"]
        net = cls.from_weights(
            tensors["A"],
            tensors["b"],
            delta,
            activation=activation if activation is not None else name,
            delta_mode=mode,
        )
        if "init" in metadata:
            net.init = metadata["init"]
        return net


def _infer_delta(
    delta: Tensor | float | None,
    delta_mode: str | None,
    A: Tensor,
    replicas: int,
    depth: int,
    replicated: bool,
) -> tuple[Tensor | None, str]:
    if delta_mode is not None:
        check_choice("delta_mode", delta_mode, DELTA_MODES)
    if delta is None:
        if delta_mode not in (None, "none"):
            raise ValueError(
                f"delta is None but delta_mode={delta_mode!r} needs values. Pass "
                "delta, or delta_mode='none'."
            )
        return None, "none"
    if isinstance(delta, (int, float)) and not isinstance(delta, bool):
        check_positive_float("delta", abs(float(delta)), allow_zero=True)
        delta = torch.tensor(float(delta), dtype=A.dtype, device=A.device)
    delta = check_tensor("delta", delta)
    check_same_dtype_device("delta", delta, A)

    shared_shape = (replicas,) if replicated else ()
    layer_shape = (replicas, depth) if replicated else (depth,)
    shape = tuple(delta.shape)
    mode = delta_mode
    if mode is None:
        mode = "shared" if shape == shared_shape else "per-layer"
    if mode == "none":
        return None, "none"
    expected = shared_shape if mode == "shared" else layer_shape
    if shape != expected:
        raise ValueError(
            f"delta for delta_mode={mode!r} must have shape {expected} to match A "
            f"of shape {tuple(A.shape)}, got {shape}."
        )
    return delta, mode


def effective_weights(net: ResNet) -> tuple[Tensor, Tensor]:
    r"""Return :math:`\delta_k A_k` and :math:`\delta_k b_k` of a network.

    Shapes follow the parameters: ``(L, d, d)`` and ``(L, d)``, or with a
    leading replicas axis.
    """
    delta = net.effective_delta()
    return delta[..., None, None] * net.A, delta[..., None] * net.b


def layer_times(depth: int, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """Return the layer grid :math:`t_k = k/L`, ``k = 0..L``, built in float64."""
    check_int("depth", depth, minimum=1)
    return (torch.arange(depth + 1, dtype=torch.float64) / depth).to(dtype)

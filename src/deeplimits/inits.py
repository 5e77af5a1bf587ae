r"""Initialisations of the per-layer weights :math:`A_k` and :math:`b_k`.

Every initialiser returns ``A`` of shape ``(R, L, d, d)`` and ``b`` of shape
``(R, L, d)`` in float64 on the CPU, drawn from a seeded generator so that the
same seed gives the same weights on every machine. With ``s`` the scale:

- ``"xavier"``: :math:`A` entries :math:`N(0, (s/d)^2)`, :math:`b` entries
  :math:`N(0, (s/\sqrt d)^2)`.
- ``"xavier-depth"``: the same standard deviations divided by :math:`L`.
- ``"diffusive"``: the same standard deviations divided by :math:`\sqrt L`.
- ``"smooth"``: :math:`A_k = L^{-\beta} \bar A(k/L)`, :math:`b_k` likewise.
- ``"fbm"``: fractional Gaussian noise with Hurst index :math:`H`.
- ``"zero"``: all weights 0.

``"smooth"`` draws :math:`\bar A(t) = (s/d) \sum_{m<M} C_m \cos(\pi m t)/(1+m)^2`
with i.i.d. standard normal matrices :math:`C_m` (and likewise :math:`\bar b` with
scale :math:`s/\sqrt d`). ``"fbm"`` draws each entry as the increments
:math:`B^H((k+1)/L) - B^H(k/L)` of a fractional Brownian motion with Hurst index
:math:`H`, scaled by :math:`s/d` (by :math:`s/\sqrt d` for ``b``), so increments
have standard deviation :math:`(s/d) L^{-H}`; :math:`H = 1/2` is the diffusive
case. The increments are sampled exactly by circulant embedding
(Davies and Harte, Biometrika 74, 1987), vectorised over all entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import check_positive_float, describe

__all__ = [
    "Smooth",
    "FractionalBrownian",
    "INIT_NAMES",
    "initial_weights",
    "fractional_gaussian_noise",
]

INIT_NAMES: tuple[str, ...] = (
    "xavier",
    "xavier-depth",
    "diffusive",
    "smooth",
    "fbm",
    "zero",
)


@dataclass(frozen=True)
class Smooth:
    r"""Smooth initialisation :math:`A_k = L^{-\beta} \bar A(k/L)`.

    Args:
        beta: Depth exponent :math:`\beta \ge 0`.
        modes: Number :math:`M \ge 1` of cosine modes in :math:`\bar A`.
    """

    beta: float = 0.0
    modes: int = 4

    def __post_init__(self) -> None:
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)):
            raise TypeError(
                f"Smooth(beta=...) must be a number, got {describe(self.beta)}."
            )
        if not math.isfinite(self.beta) or self.beta < 0:
            raise ValueError(
                f"Smooth(beta=...) must be finite and >= 0, got {self.beta!r}."
            )
        if (
            isinstance(self.modes, bool)
            or not isinstance(self.modes, int)
            or self.modes < 1
        ):
            raise ValueError(
                f"Smooth(modes=...) must be an int >= 1, got {describe(self.modes)}."
            )


@dataclass(frozen=True)
class FractionalBrownian:
    """Fractional Brownian increments with Hurst index ``hurst`` in (0, 1)."""

    hurst: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.hurst, bool) or not isinstance(self.hurst, (int, float)):
            raise TypeError(
                f"FractionalBrownian(hurst=...) must be a number, got "
                f"{describe(self.hurst)}."
            )
        if not 0.0 < self.hurst < 1.0:
            raise ValueError(
                "FractionalBrownian(hurst=...) must lie strictly between 0 and 1, "
                f"got {self.hurst!r}. Use 0.5 for Brownian increments."
            )


InitSpec = str | Smooth | FractionalBrownian


def resolve_init(init: InitSpec) -> str | Smooth | FractionalBrownian:
    """Map an init name to its configuration object, checking it."""
    if isinstance(init, (Smooth, FractionalBrownian)):
        return init
    if isinstance(init, str):
        if init == "smooth":
            return Smooth()
        if init == "fbm":
            return FractionalBrownian()
        if init in INIT_NAMES:
            return init
        listed = ", ".join(repr(name) for name in INIT_NAMES)
        raise ValueError(
            f"init must be one of {listed}, Smooth(...) or FractionalBrownian(...), "
            f"got {init!r}."
        )
    raise TypeError(
        "init must be a name, Smooth(...) or FractionalBrownian(...), got "
        f"{describe(init)}."
    )


def init_name(init: InitSpec) -> str:
    """Return a string that records ``init`` in files, e.g. ``"fbm(hurst=0.7)"``."""
    resolved = resolve_init(init)
    if isinstance(resolved, Smooth):
        return f"smooth(beta={resolved.beta}, modes={resolved.modes})"
    if isinstance(resolved, FractionalBrownian):
        return f"fbm(hurst={resolved.hurst})"
    return resolved


def fractional_gaussian_noise(
    n_paths: int, length: int, hurst: float, generator: torch.Generator
) -> Tensor:
    r"""Sample fractional Gaussian noise with unit spacing, exactly.

    Returns ``(n_paths, length)`` float64 samples whose rows have the stationary
    covariance :math:`\gamma(j) = \tfrac12(|j+1|^{2H} - 2|j|^{2H} + |j-1|^{2H})`,
    the increments of a fractional Brownian motion on the integers. Rescale by
    :math:`L^{-H}` for increments on the grid :math:`k/L`.

    Uses circulant embedding of size :math:`2(n-1)`, whose eigenvalues are
    non-negative for fractional Gaussian noise (Craigmile, J. Time Ser. Anal.
    24, 2003), so no approximation is made; round-off negatives are set to 0.
    """
    if length == 1:
        return torch.randn(n_paths, 1, generator=generator, dtype=torch.float64)
    lags = torch.arange(length, dtype=torch.float64)
    two_h = 2.0 * hurst
    gamma = 0.5 * (
        (lags + 1).pow(two_h) - 2 * lags.pow(two_h) + (lags - 1).abs().pow(two_h)
    )
    first_row = torch.cat([gamma, gamma[1:-1].flip(0)])
    size = first_row.numel()
    eigenvalues = torch.fft.fft(first_row).real.clamp_min(0.0)
    real = torch.randn(n_paths, size, generator=generator, dtype=torch.float64)
    imaginary = torch.randn(n_paths, size, generator=generator, dtype=torch.float64)
    spectrum = torch.sqrt(eigenvalues / size) * torch.complex(real, imaginary)
    return torch.fft.fft(spectrum, dim=-1).real[:, :length]


def _smooth_profile(
    shape: tuple[int, ...], depth: int, config: Smooth, generator: torch.Generator
) -> Tensor:
    # Returns (R, L, *entry_shape) samples of sum_m C_m cos(pi m t_k) / (1 + m)^2.
    replicas, entry_shape = shape[0], shape[1:]
    times = torch.arange(depth, dtype=torch.float64) / depth
    modes = torch.arange(config.modes, dtype=torch.float64)
    basis = torch.cos(math.pi * modes[None, :] * times[:, None]) / (1 + modes) ** 2
    coefficients = torch.randn(
        replicas, config.modes, *entry_shape, generator=generator, dtype=torch.float64
    )
    profile = torch.einsum("lm,rm...->rl...", basis, coefficients)
    return profile * depth ** (-config.beta)


def _fbm_increments(
    shape: tuple[int, ...],
    depth: int,
    config: FractionalBrownian,
    generator: torch.Generator,
) -> Tensor:
    replicas, entry_shape = shape[0], shape[1:]
    n_paths = replicas * math.prod(entry_shape)
    noise = fractional_gaussian_noise(n_paths, depth, config.hurst, generator)
    noise = noise * depth ** (-config.hurst)
    noise = noise.reshape(replicas, *entry_shape, depth)
    return noise.movedim(-1, 1)


def initial_weights(
    init: InitSpec,
    *,
    replicas: int,
    depth: int,
    dim: int,
    scale: float,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Draw ``A`` of shape ``(R, L, d, d)`` and ``b`` of shape ``(R, L, d)``.

    See the module docstring for each initialisation. All draws are float64
    on the CPU from ``generator``.
    """
    config = resolve_init(init)
    scale = check_positive_float("init_scale", scale, allow_zero=True)
    a_shape = (replicas, depth, dim, dim)
    b_shape = (replicas, depth, dim)
    a_std = scale / dim
    b_std = scale / math.sqrt(dim)

    if config == "zero":
        return torch.zeros(a_shape, dtype=torch.float64), torch.zeros(
            b_shape, dtype=torch.float64
        )
    if isinstance(config, Smooth):
        a_unit = _smooth_profile((replicas, dim, dim), depth, config, generator)
        b_unit = _smooth_profile((replicas, dim), depth, config, generator)
        return a_std * a_unit, b_std * b_unit
    if isinstance(config, FractionalBrownian):
        a_unit = _fbm_increments((replicas, dim, dim), depth, config, generator)
        b_unit = _fbm_increments((replicas, dim), depth, config, generator)
        return a_std * a_unit, b_std * b_unit

    divisor = {
        "xavier": 1.0,
        "xavier-depth": float(depth),
        "diffusive": math.sqrt(depth),
    }[config]
    a_unit = torch.randn(a_shape, generator=generator, dtype=torch.float64)
    b_unit = torch.randn(b_shape, generator=generator, dtype=torch.float64)
    return a_std / divisor * a_unit, b_std / divisor * b_unit

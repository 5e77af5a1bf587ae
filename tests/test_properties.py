"""Property-based checks with hypothesis: invariants over random sizes."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deeplimits import geometric_depths, get_activation
from deeplimits.activations import ACTIVATION_NAMES
from deeplimits.kernel import fused_states, reference_states
from deeplimits.scaling import max_norm, rms, root_ssq, roughness_ratio

# Derandomised so that a failure reproduces on every machine.
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)


@SETTINGS
@given(
    name=st.sampled_from(ACTIVATION_NAMES),
    replicas=st.integers(1, 3),
    depth=st.integers(1, 12),
    dim=st.integers(1, 5),
    batch=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_fused_kernel_matches_autograd_loop(name, replicas, depth, dim, batch, seed):
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    inputs = [
        draw(replicas, batch, dim).requires_grad_(True),
        draw(replicas, depth, dim, dim).requires_grad_(True),
        draw(replicas, depth, dim).requires_grad_(True),
        draw(replicas, depth).requires_grad_(True),
    ]
    activation = get_activation(name)
    fused = fused_states(*inputs, activation)
    reference = reference_states(*inputs, activation)
    torch.testing.assert_close(fused, reference, rtol=1e-11, atol=1e-11)

    weights = draw(*fused.shape)
    fused_grads = torch.autograd.grad((fused * weights).sum(), inputs)
    reference_grads = torch.autograd.grad((reference * weights).sum(), inputs)
    for fused_grad, reference_grad in zip(fused_grads, reference_grads, strict=True):
        torch.testing.assert_close(fused_grad, reference_grad, rtol=1e-9, atol=1e-10)


@SETTINGS
@given(depth=st.integers(2, 40), width=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_statistics_identities(depth, width, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(depth, width, width, generator=generator, dtype=torch.float64)
    # root SSQ^2 = L RMS^2, and the max norm bounds the RMS from above.
    squared_root_ssq = float(root_ssq(x)) ** 2
    assert math.isclose(squared_root_ssq, depth * float(rms(x)) ** 2, rel_tol=1e-12)
    assert float(max_norm(x)) >= float(rms(x)) * (1 - 1e-12)
    # ||a + b||^2 <= 2 ||a||^2 + 2 ||b||^2 bounds the ratio by 2.
    ratio = float(roughness_ratio(x))
    assert 0.0 <= ratio <= 2.0 + 1e-12


@SETTINGS
@given(
    min_depth=st.integers(1, 50),
    span=st.integers(0, 500),
    base=st.floats(1.1, 4.0, allow_nan=False),
)
def test_geometric_depths_sorted_unique_in_range(min_depth, span, base):
    max_depth = min_depth + span
    # floor(b^n) with a relative slack of 1e-9, as documented, so that for
    # example sqrt(2)^2 counts as 2.
    powers = {math.floor(base**n * (1 + 1e-9)) for n in range(200)}
    expected = sorted(depth for depth in powers if min_depth <= depth <= max_depth)
    if not expected:
        with pytest.raises(ValueError, match="no depth floor"):
            geometric_depths(min_depth, max_depth, base)
        return
    depths = geometric_depths(min_depth, max_depth, base)
    assert depths == expected

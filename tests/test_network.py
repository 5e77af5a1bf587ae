"""ResNet: shapes, delta modes, replicas, storage and argument checks."""

import pytest
import torch

from deeplimits import ResNet


def _x(batch=5, dim=4, dtype=torch.float32, seed=0):
    return torch.randn(
        batch, dim, dtype=dtype, generator=torch.Generator().manual_seed(seed)
    )


def test_parameter_shapes_single():
    net = ResNet(4, 10, delta="per-layer", seed=0)
    assert net.A.shape == (10, 4, 4)
    assert net.b.shape == (10, 4)
    assert net.delta.shape == (10,)
    assert set(net.state_dict()) == {"A", "b", "delta"}


def test_parameter_shapes_replicas():
    net = ResNet(4, 10, delta="shared", replicas=3, seed=0)
    assert net.A.shape == (3, 10, 4, 4)
    assert net.b.shape == (3, 10, 4)
    assert net.delta.shape == (3,)
    assert net.effective_delta().shape == (3, 10)


def test_delta_none_has_no_parameter():
    net = ResNet(4, 10, delta="none", seed=0)
    assert net.delta is None
    assert set(net.state_dict()) == {"A", "b"}
    assert torch.equal(net.effective_delta(), torch.ones(10))


def test_delta_initial_values():
    depth = 200
    shared = ResNet(3, depth, delta="shared", seed=0)
    assert shared.delta.item() == pytest.approx(1 / depth)
    per_layer = ResNet(3, depth, delta="per-layer", seed=0, dtype=torch.float64)
    # N(0, 1/L^2): the std of 200 draws is within 20% of 1/L.
    assert per_layer.delta.std().item() == pytest.approx(1 / depth, rel=0.2)
    assert (per_layer.delta < 0).any()


def test_shared_delta_used_as_absolute_value():
    net = ResNet(3, 6, delta="shared", seed=0, dtype=torch.float64)
    x = _x(dim=3, dtype=torch.float64)
    before = net(x)
    with torch.no_grad():
        net.delta.neg_()
    torch.testing.assert_close(net(x), before)


def test_forward_matches_explicit_recursion():
    net = ResNet(
        4,
        7,
        activation="gelu",
        delta="per-layer",
        init="xavier",
        init_scale=1.0,
        seed=1,
        dtype=torch.float64,
    )
    x = _x(dtype=torch.float64)
    h = x
    for k in range(7):
        h = h + net.delta[k] * torch.nn.functional.gelu(h @ net.A[k].T + net.b[k])
    torch.testing.assert_close(net(x), h, rtol=1e-13, atol=1e-13)
    states = net.hidden_states(x)
    assert states.shape == (8, 5, 4)
    torch.testing.assert_close(states[0], x)
    torch.testing.assert_close(states[-1], h, rtol=1e-13, atol=1e-13)


def test_replicas_are_independent_networks():
    net = ResNet(
        4,
        6,
        init="xavier",
        init_scale=1.0,
        replicas=3,
        seed=2,
        delta="per-layer",
        dtype=torch.float64,
    )
    x = _x(dtype=torch.float64)
    output = net(x)
    assert output.shape == (3, 5, 4)
    for r in range(3):
        single = net.replica(r)
        assert not single.has_replicas
        torch.testing.assert_close(single(x), output[r], rtol=1e-13, atol=1e-13)
    per_replica_input = torch.stack([x, 2 * x, -x])
    output = net(per_replica_input)
    torch.testing.assert_close(net.replica(1)(2 * x), output[1], rtol=1e-13, atol=1e-13)
    assert net.hidden_states(x).shape == (3, 7, 5, 4)


def test_replica_gradients_do_not_mix():
    net = ResNet(3, 5, init="xavier", init_scale=1.0, replicas=2, seed=3)
    net(_x(dim=3))[0].sum().backward()
    assert net.A.grad[0].abs().sum() > 0
    assert net.A.grad[1].abs().sum() == 0


@pytest.mark.parametrize("delta", ["none", "shared", "per-layer"])
@pytest.mark.parametrize("replicas", [1, 2])
def test_save_load_round_trip(tmp_path, delta, replicas):
    net = ResNet(
        3, 5, activation="relu", delta=delta, init="xavier", replicas=replicas, seed=4
    )
    path = tmp_path / "net.safetensors"
    net.save(path)
    loaded = ResNet.load(path)
    assert loaded.delta_mode == delta
    assert loaded.activation.name == "relu"
    assert loaded.replicas == replicas
    assert loaded.init == "xavier"
    x = _x(dim=3)
    torch.testing.assert_close(loaded(x), net(x))


def test_load_user_activation_needs_function(tmp_path):
    net = ResNet(2, 3, activation=torch.sin, seed=0)
    path = tmp_path / "net.safetensors"
    net.save(path)
    with pytest.raises(ValueError, match=r"user activation 'sin'.*Pass activation="):
        ResNet.load(path)
    loaded = ResNet.load(path, activation=torch.sin)
    torch.testing.assert_close(loaded(_x(dim=2)), net(_x(dim=2)))


def test_load_rejects_foreign_file(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2)}, str(path))
    with pytest.raises(
        ValueError, match=r"not a deeplimits network file: missing A, b"
    ):
        ResNet.load(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No safetensors file"):
        ResNet.load(tmp_path / "absent.safetensors")


def test_from_weights_infers_delta_mode():
    A, b = torch.zeros(6, 2, 2), torch.zeros(6, 2)
    assert ResNet.from_weights(A, b).delta_mode == "none"
    assert ResNet.from_weights(A, b, torch.tensor(0.5)).delta_mode == "shared"
    assert ResNet.from_weights(A, b, 0.5).delta_mode == "shared"
    assert ResNet.from_weights(A, b, torch.ones(6)).delta_mode == "per-layer"
    net = ResNet.from_weights(
        torch.zeros(3, 6, 2, 2), torch.zeros(3, 6, 2), torch.ones(3)
    )
    assert net.delta_mode == "shared"
    assert net.replicas == 3


def test_from_weights_keeps_values():
    generator = torch.Generator().manual_seed(5)
    A = torch.randn(4, 3, 3, dtype=torch.float64, generator=generator)
    b = torch.randn(4, 3, dtype=torch.float64, generator=generator)
    delta = torch.randn(4, dtype=torch.float64, generator=generator)
    net = ResNet.from_weights(A, b, delta, activation="identity")
    assert net.A.dtype == torch.float64
    assert torch.equal(net.A.detach(), A)
    assert torch.equal(net.effective_delta().detach(), delta)


def test_to_moves_parameters():
    net = ResNet(3, 4, seed=0).to(torch.float64)
    assert net.A.dtype == torch.float64
    assert net(_x(dim=3, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"depth": 0}, ValueError, r"depth must be at least 1, got 0"),
        ({"dim": 2.5}, TypeError, r"dim must be an int, got 2.5 \(float\)"),
        ({"delta": "layer"}, ValueError, r"delta must be one of 'none', 'shared'"),
        ({"activation": "swish"}, ValueError, r"activation must be one of"),
        ({"replicas": 0}, ValueError, r"replicas must be at least 1"),
        ({"dtype": torch.int64}, TypeError, r"dtype must be a floating torch.dtype"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, error, pattern):
    arguments = {"dim": 3, "depth": 4} | kwargs
    dim, depth = arguments.pop("dim"), arguments.pop("depth")
    with pytest.raises(error, match=pattern):
        ResNet(dim, depth, **arguments)


def test_forward_rejects_wrong_width():
    net = ResNet(3, 4, seed=0)
    with pytest.raises(ValueError, match=r"x must have 3 features.*got shape \(5, 4\)"):
        net(_x(dim=4))


def test_forward_rejects_nan():
    net = ResNet(3, 4, seed=0)
    x = _x(dim=3)
    x[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"x contains 1 NaN or infinite entries"):
        net(x)


def test_forward_rejects_dtype_mismatch():
    net = ResNet(3, 4, seed=0)
    with pytest.raises(
        TypeError, match=r"x has dtype torch.float64 but the model uses"
    ):
        net(_x(dim=3, dtype=torch.float64))


def test_forward_rejects_wrong_replica_count():
    net = ResNet(3, 4, seed=0, replicas=2)
    with pytest.raises(
        ValueError, match=r"must have shape \(2, batch, 3\), got \(3, 5, 3\)"
    ):
        net(torch.zeros(3, 5, 3))


def test_from_weights_rejects_mismatched_b():
    with pytest.raises(ValueError, match=r"b must have shape \(6, 2\).*got \(5, 2\)"):
        ResNet.from_weights(torch.zeros(6, 2, 2), torch.zeros(5, 2))


def test_from_weights_rejects_wrong_delta_shape():
    with pytest.raises(
        ValueError, match=r"delta for delta_mode='per-layer' must have shape \(6,\)"
    ):
        ResNet.from_weights(torch.zeros(6, 2, 2), torch.zeros(6, 2), torch.ones(5))


def test_from_weights_rejects_nan_weights():
    A = torch.zeros(3, 2, 2)
    A[1, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"A contains 1 NaN or infinite entries"):
        ResNet.from_weights(A, torch.zeros(3, 2))


def test_from_weights_rejects_dtype_mismatch():
    with pytest.raises(TypeError, match=r"b has dtype torch.float64"):
        ResNet.from_weights(
            torch.zeros(3, 2, 2), torch.zeros(3, 2, dtype=torch.float64)
        )


def test_load_rejects_corrupt_file(tmp_path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(
        ValueError, match=r"garbage.safetensors' is not a readable safetensors"
    ):
        ResNet.load(path)


def test_forward_rejects_device_mismatch():
    net = ResNet(3, 4, seed=0)
    x = torch.zeros(5, 3, device="meta")
    with pytest.raises(
        ValueError, match=r"x is on device meta but the model is on cpu"
    ):
        net(x)

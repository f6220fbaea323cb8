"""What tilelli.export accepts (nested Sequential, custom forwards traced by torch.fx, BitLinear,
RMSNorm, functional activations, flatten and views) and the errors for what it does not."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tilelli
from conftest import node_run
from tilelli import tlm


class Net(nn.Module):
    """A custom forward: functional activations, a view, a nested Sequential."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(12, 16), nn.SiLU()))
        self.head = tilelli.TernaryLinear(16, 8, quantizer="per_row")
        self.out = nn.Linear(8, 5)

    def forward(self, x):
        h = self.body(x)
        h = F.gelu(self.head(h.view(h.size(0), -1)))
        return torch.softmax(self.out(torch.relu(h)), dim=-1)


def test_a_custom_forward_is_traced_and_named_by_qualified_names():
    torch.manual_seed(0)
    net = Net().eval()
    data = tilelli.export(net, None, version=2, quantizer="per_row")
    layers = tilelli.inspect(data)
    assert [(L["type"], L.get("name")) for L in layers] == [
        ("linear", "body.1.0"), ("silu", "body.1.1"), ("linear", "head"), ("gelu", "gelu"), ("relu", "relu"),
        ("linear", "out"), ("softmax", "softmax")]
    assert [L["quantizer"] for L in layers if L["type"] == "linear"] == ["per_row"] * 3
    x = torch.randn(9, 3, 4)
    ternary = Net().eval()
    ternary.load_state_dict(net.state_dict())
    ternary.body[1][0] = tilelli.TernaryLinear(12, 16, quantizer="per_row")
    ternary.out = tilelli.TernaryLinear(8, 5, quantizer="per_row")
    ternary.body[1][0].load_state_dict(net.body[1][0].state_dict())
    ternary.out.load_state_dict(net.out.state_dict())
    with torch.no_grad():
        assert torch.allclose(tilelli.load(data)(x.reshape(9, 12)), ternary(x), atol=1e-6)


def test_bitlinear_and_rmsnorm_round_trip(tmp_path):
    torch.manual_seed(1)
    model = nn.Sequential(tilelli.RMSNorm(20), tilelli.BitLinear(20, 32, norm_weight=True, eps=1e-6), nn.ReLU(),
                          tilelli.BitLinear(32, 6, quantizer="lsq")).eval()
    with torch.no_grad():
        model[0].weight.uniform_(0.5, 1.5)
        model[1].norm_weight.uniform_(0.5, 1.5)
    data = tilelli.export(model, None)
    assert tlm.read(data).version == 1   # bitlinear needs no version-2 key
    layers = tilelli.inspect(data)
    assert [L["type"] for L in layers] == ["rmsnorm", "bitlinear", "relu", "bitlinear"]
    assert layers[1]["eps"] == float(np.float32(1e-6)) and layers[1]["norm_weight"] and not layers[3]["norm_weight"]
    x = torch.randn(50, 20)
    with torch.no_grad():
        want, got = model(x), tilelli.load(data)(x)
    assert torch.allclose(got, want, atol=1e-4 * float(want.abs().max()))
    path = tmp_path / "bit.tlm"
    path.write_bytes(data)
    js = node_run([str(path)], x.numpy(), tmp_path)[str(path)]["outputs"]   # the runtime
    assert np.array_equal(js.view(np.uint32), got.numpy().view(np.uint32))  # RMSNorm and int8: bit for bit


def test_training_a_ternary_linear_moves_its_shadow_weights():
    torch.manual_seed(2)
    lin = tilelli.TernaryLinear(8, 4, quantizer="lsq")
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2)
    before = lin.weight.detach().clone(), float(lin.scale.alpha)
    loss = lin(torch.randn(16, 8)).pow(2).mean()
    loss.backward()
    opt.step()
    assert not torch.equal(lin.weight, before[0]) and float(lin.scale.alpha) != before[1]


@pytest.mark.parametrize("model, match", [
    (nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), nn.Conv1d(1, 1, 1))),
     r"1\.1 \(torch\.nn\.modules\.conv\.Conv1d\) is not supported"),
    (nn.Sequential(nn.Linear(4, 4), nn.Tanh()), r"^tilelli\.export: 1 \(torch\.nn\.modules\.activation\.Tanh\) is not"),
    (nn.Sequential(nn.Linear(4, 4), nn.GELU(approximate="tanh")), r"1 \(.*GELU\) uses approximate='tanh'"),
    (nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=0)), r"1 \(.*Softmax\) has dim=0"),
    (nn.Sequential(nn.ReLU()), "no linear layer"),
])
def test_unsupported_modules_are_named_with_their_type(model, match):
    with pytest.raises(tilelli.ExportError, match=match):
        tilelli.export(model, None)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return x + self.fc(x)


class Sigmoid(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return torch.sigmoid(self.fc(x))


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return x


def test_custom_forwards_outside_the_chain_are_named():
    named = nn.Sequential()
    named.add_module("stem", nn.Linear(4, 4))
    named.add_module("block", Residual())
    with pytest.raises(tilelli.ExportError, match=r"the function add in block \(.*\.Residual\) does not take"):
        tilelli.export(named, None)
    named = nn.Sequential()
    named.add_module("gate", Sigmoid())
    with pytest.raises(tilelli.ExportError, match=r"the function sigmoid in gate \(.*\.Sigmoid\) is not supported"):
        tilelli.export(named, None)
    named = nn.Sequential()
    named.add_module("maybe", Branchy())
    with pytest.raises(tilelli.ExportError, match=r"torch\.fx cannot trace maybe \(.*\.Branchy\)"):
        tilelli.export(named, None)


class OwnLinear(nn.Linear):
    """A user's ternary linear written by hand (as in test/fixtures/gen_mnist.py)."""

    def forward(self, x):
        return F.linear(x, tilelli.ternarize(self.weight), self.bias)


def test_an_nn_linear_subclass_with_its_own_forward_is_named_with_a_hint():
    named = nn.Sequential()
    named.add_module("fc1", OwnLinear(4, 4))
    with pytest.raises(tilelli.ExportError, match=r"fc1 \(.*\.OwnLinear\).*load its state_dict into "
                                                  r"tilelli.TernaryLinear"):
        tilelli.export(named, None)


def test_bad_arguments_and_weights_are_refused():
    m = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(tilelli.ExportError, match="quantizer='lsq' needs a learned scale"):
        tilelli.export(m, None, quantizer="lsq")
    with pytest.raises(tilelli.ExportError, match="format must be one of"):
        tilelli.export(m, None, format="q4")
    with pytest.raises(tilelli.ExportError, match="activations must be float or int8"):
        tilelli.export(m, None, activations="int4")
    with torch.no_grad():
        m[0].weight[1, 2] = float("nan")
    with pytest.raises(tilelli.ExportError, match=r"0 \(torch\.nn\.modules\.linear\.Linear\) weight holds a NaN"):
        tilelli.export(m, None)
    with pytest.raises(tilelli.ExportError, match="takes 5 inputs but gets vectors of 3"):
        tilelli.export(nn.Sequential(nn.Linear(4, 3), nn.Linear(5, 2)), None)

"""tilelli.export of MNIST MLPs with each quantizer, format and activation precision, run by the CLI
(`node bin/tilelli.js run model.tlm digits.json --json`) and by tl.Model.load in Node, against PyTorch
(the torch model itself, and tilelli.load) on the 2004 MNIST test digits."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import tilelli
from conftest import cli_run, mnist_expected, mnist_state_dict, node_run

# per file: (quantizer, format, activations); plain nn.Linear for per_tensor/per_row, TernaryLinear for lsq
CONFIGS = [
    ("per_tensor", "i2", "float"),
    ("per_row", "tq1", "float"),
    ("lsq", "bitplane", "float"),
    ("per_tensor", "tq1", "int8"),
    ("per_row", "bitplane", "int8"),
    ("lsq", "i2", "int8"),
]


def mlp(quantizer: str) -> nn.Module:
    """The fixture's trained 784-256-256-10 MLP; lsq layers get a learned scale of 0.9 x AbsMean."""
    sd = mnist_state_dict()
    if quantizer == "lsq":
        def lin(i, o, k):
            a = float(tilelli.absmean_scale(sd[f"fc{k}.weight"])) * 0.9
            return tilelli.TernaryLinear(i, o, quantizer="lsq", lsq_init=a)
    elif quantizer == "per_row":
        def lin(i, o, k):
            return tilelli.TernaryLinear(i, o, quantizer="per_row")
    else:
        def lin(i, o, k):
            return tilelli.TernaryLinear(i, o)
    model = nn.Sequential(lin(784, 256, 1), nn.ReLU(), lin(256, 256, 2), nn.ReLU(), lin(256, 10, 3))
    with torch.no_grad():
        for k, i in ((1, 0), (2, 2), (3, 4)):
            model[i].weight.copy_(sd[f"fc{k}.weight"])
            model[i].bias.copy_(sd[f"fc{k}.bias"])
    return model.eval()


def plain(quantizer: str) -> nn.Module:
    """The same weights in plain nn.Linear layers (export ternarizes them with its quantizer)."""
    ref = mlp(quantizer)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    model.load_state_dict({k: v for k, v in ref.state_dict().items() if "scale" not in k})
    return model.eval()


def close(got: np.ndarray, want: np.ndarray) -> bool:
    """Within 1e-5 of each row's largest |logit|."""
    tol = 1e-5 * np.abs(want).max(axis=1, keepdims=True)
    return bool(np.all(np.abs(got - want) <= tol))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, digits):
    d = tmp_path_factory.mktemp("export")
    out = {}
    for q, fmt, act in CONFIGS:
        path = str(d / f"{q}-{fmt}-{act}.tlm")
        # lsq needs TernaryLinear's learned scale; the others go through plain nn.Linear + quantizer
        model = mlp(q) if q == "lsq" else plain(q)
        tilelli.export(model, path, format=fmt, quantizer="per_tensor" if q == "lsq" else q, activations=act)
        out[(q, fmt, act)] = path
    return out


@pytest.fixture(scope="module")
def node_results(exported, digits, tmp_path_factory):
    """tl.Model.load + run in Node, one process per activation precision."""
    def run(act):
        return node_run([p for c, p in exported.items() if c[2] == act], digits[0], tmp_path_factory.mktemp("node"))
    cache: dict = {}

    def get(path):
        act = next(c[2] for c, p in exported.items() if p == path)
        if act not in cache:
            cache[act] = run(act)
        return cache[act][path]
    return get


@pytest.mark.parametrize("config", CONFIGS, ids=["-".join(c) for c in CONFIGS])
def test_cli_and_node_give_pytorchs_predictions(config, exported, node_results, digits_json, digits):
    q, fmt, act = config
    path = exported[config]
    x = torch.from_numpy(digits[0])
    with torch.no_grad():
        torch_logits = mlp(q)(x).numpy()                  # the PyTorch model (STE forward, float activations)
        packed_logits = tilelli.load(path)(x).numpy()     # what the packed file computes, in PyTorch
    cli = cli_run(path, digits_json)
    cli_logits = np.array(cli["outputs"], dtype=np.float32)
    node = node_results(path)
    assert cli_logits.shape == (2004, 10) and node["outputs"].shape == (2004, 10)
    assert cli["predictions"] == node["predictions"]
    assert np.array_equal(np.array(cli["predictions"]), cli_logits.argmax(axis=1))
    if act == "float":
        for got in (cli_logits, node["outputs"], packed_logits):
            assert close(got, torch_logits)
        assert cli["predictions"] == torch_logits.argmax(axis=1).tolist()
        assert close(node["outputs"], packed_logits) and close(cli_logits, packed_logits)
    else:
        # int8 activations: tilelli.load follows the runtime bit for bit (exact int32 sums, the same
        # float32 roundings in the same order)
        assert np.array_equal(cli_logits.view(np.uint32), packed_logits.view(np.uint32))
        assert np.array_equal(node["outputs"].view(np.uint32), packed_logits.view(np.uint32))
        same = np.mean(np.array(cli["predictions"]) == torch_logits.argmax(axis=1))
        assert same >= 0.99, f"int8 activations change {1 - same:.2%} of PyTorch's predictions"
    if q == "per_tensor" and act == "float":
        exp, _ = mnist_expected()
        assert cli["predictions"] == exp["predictions"].tolist()   # the fixture's PyTorch predictions


@pytest.mark.parametrize("config", CONFIGS, ids=["-".join(c) for c in CONFIGS])
def test_the_file_says_what_it_holds(config, exported, node_results):
    q, fmt, act = config
    path = exported[config]
    layers = tilelli.inspect(path)
    assert [L["type"] for L in layers] == ["linear", "relu", "linear", "relu", "linear"]
    lin = [L for L in layers if L["type"] == "linear"]
    assert [(L["in"], L["out"], L["format"], L["bias"]) for L in lin] == \
        [(784, 256, fmt, True), (256, 256, fmt, True), (256, 10, fmt, True)]
    version = tilelli.load(path).version
    if act == "float":
        assert version == 1 and all("quantizer" not in L and "name" not in L for L in layers)
    else:
        assert version == 2
        assert [L["quantizer"] for L in lin] == [q] * 3 and [L["activations"] for L in lin] == ["int8"] * 3
        assert [L["name"] for L in layers] == ["0", "1", "2", "3", "4"]
        js = node_results(path)["layers"]
        assert [(L.get("activations"), L.get("quantizer"), L.get("name")) for L in js if L["type"] == "linear"] == \
            [("int8", q, n) for n in ("0", "2", "4")]


def test_export_stores_the_trits_and_scales_pytorch_uses(exported):
    for (q, fmt, act), path in exported.items():
        model = mlp(q)
        loaded = tilelli.load(path)
        for i in (0, 2, 4):
            trits, scales = model[i].trits_and_scales()
            assert torch.equal(loaded[i].trits, trits) and torch.equal(loaded[i].scales, scales)
            assert torch.equal(loaded[i].bias, model[i].bias.detach())

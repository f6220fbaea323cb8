"""TernaryLinear against the committed training fixtures (test/fixtures/train/, README there): the
scales and trits of the initial and final weights bit for bit, the first forward's logits and the
straight-through gradients to float32 summation order."""
from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tilelli
from conftest import FIXTURES, read_safetensors

FILES = sorted(glob.glob(os.path.join(FIXTURES, "train", "*.safetensors")))
QUANT = {"per_tensor": "per_tensor", "per_row": "per_row", "lsq": "lsq", "lsq_paper": "lsq"}


def load(path):
    tensors, meta = read_safetensors(path)
    return {k: torch.from_numpy(v) for k, v in tensors}, json.loads(meta["case"])


# the float32 baseline ("none") has no quantizer to check
QUANTIZED = [p for p in FILES if json.loads(read_safetensors(p)[1]["case"])["quantizer"] != "none"]


def test_the_fixtures_are_there():
    assert len(FILES) == 18 and len(QUANTIZED) == 17


@pytest.mark.parametrize("path", QUANTIZED, ids=[os.path.basename(p)[:-12] for p in QUANTIZED])
def test_ternary_linear_equals_the_training_fixtures(path):
    t, case = load(path)
    q = case["quantizer"]
    layers = []
    for k in (1, 2, 3):
        w = t[f"L{k}.weight"]
        lin = tilelli.TernaryLinear(w.shape[1], w.shape[0], quantizer=QUANT[q],
                                    lsq_init=float(t[f"L{k}.alpha"]) if q.startswith("lsq") else None)
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(t[f"L{k}.bias"])
        layers.append(lin)
        trits, scales = lin.trits_and_scales()
        want_scale = t[f"scale.L{k}"]
        assert torch.equal(scales[: want_scale.numel()], want_scale) and bool((scales == scales[0]).all()
                                                                             or q == "per_row")
        assert torch.equal(trits, t[f"trits.L{k}"])
        # the final weights' trits under the final scale
        aw = t[f"after.L{k}.weight"]
        alpha = t[f"after.L{k}.alpha"].reshape(()) if q.startswith("lsq") else None
        at, _ = tilelli.ternary_parts(aw, QUANT[q], None if alpha is None else alpha.clamp(min=tilelli.EPS))
        assert torch.equal(at, t[f"after.trits.L{k}"])

    x = t["x"].reshape(-1, 8, 20)[0]
    act = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu}[case["activation"]]
    h = x
    for k, lin in enumerate(layers):
        h = lin(h)
        if case["tequila_lambda"]:
            w = lin.weight
            h = h + case["tequila_lambda"] * (w * (tilelli.ternary_signs(w) == 0).to(w.dtype)).sum(1)
        if k < 2:
            h = act(h)
    want = t["logits"]
    assert float((h.detach() - want).abs().max()) <= 1e-5 * float(want.abs().max())
    if q == "lsq_paper":
        return  # its gradient is the LSQ paper's (gen_train.py), not the package's STE
    if case["loss"] == "cross_entropy":
        loss = F.cross_entropy(h, t["labels"].reshape(-1, 8)[0].long())
    else:
        loss = F.mse_loss(h, t["targets"].reshape(-1, 8, 5)[0])
    assert abs(float(loss) - float(t["loss"][0])) <= 1e-6 * abs(float(t["loss"][0]))
    loss.backward()
    for k, lin in enumerate(layers, 1):
        grads = [("weight", lin.weight.grad), ("bias", lin.bias.grad)]
        if q == "lsq":
            grads.append(("alpha", lin.scale.alpha.grad.reshape(1)))
        for name, g in grads:
            want = t[f"grad.L{k}.{name}"]
            assert float((g - want).abs().max()) <= 1e-4 * float(want.abs().max()) + 1e-12, (k, name)
            assert torch.equal(g == 0, want == 0), (k, name)  # exact zeros stay exact (dead units, the clamp)

"""The package's quantizers against the reference module itself (ternary.py), bit for bit, on random
and edge-case tensors: forward values, trits, scales, gradients, errors, deadzone statistics.

This is the one file in the repository that reads outside it: the reference lives next to the
repository (../shared/reference/ternary.py, on CI too). Without it the test is skipped, saying so.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import torch

import tilelli
from conftest import REPO

CANDIDATES = [os.path.join(os.path.dirname(REPO), "shared", "reference", "ternary.py"),
              "/work/shared/reference/ternary.py"]
PATH = next((p for p in CANDIDATES if os.path.exists(p)), None)
if PATH is None:
    pytest.skip("the reference module is not here (looked for " + " and ".join(CANDIDATES) +
                "): the cross-check against it cannot run", allow_module_level=True)

spec = importlib.util.spec_from_file_location("reference_ternary", PATH)
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)


def tensors():
    g = torch.Generator().manual_seed(1234)
    out = {
        "normal_64x48": torch.randn(64, 48, generator=g),
        "uniform_3x5x7": torch.rand(3, 5, 7, generator=g) * 4 - 2,
        "cauchy_300": torch.tan(torch.pi * (torch.rand(300, generator=g) - 0.5)),
        "std0.02_128x64": torch.randn(128, 64, generator=g) * 0.02,
        "zeros_5x5": torch.zeros(5, 5),
        "negzeros_9": torch.full((9,), -0.0),
        "below_eps_4x10": (torch.rand(4, 10, generator=g) - 0.5) * 1e-5,
        "denormal_2x50": torch.randn(2, 50, generator=g) * 1e-40,
        "huge_1e37_8": torch.tensor([1e37, -2e37, 3e37, -0.5e37, 1.0, -1.0, 0.0, 2e37]),
        "ties_alpha2": torch.tensor([1.0, 3.0, -1.0, -3.0]),   # alpha 2: w / alpha = +-0.5, +-1.5 exactly
        "one_1x1": torch.tensor([[0.3]]),
        "mixed_rows_6x33": torch.randn(6, 33, generator=g) * torch.tensor([[1e-8], [1.0], [1e3], [0.0], [1e-30], [5.0]]),
    }
    # values a few float32 steps around alpha * 0.5 and alpha * 1.5 of a normal tensor
    w = torch.randn(200, generator=g)
    a = float(w.abs().mean())
    for k, c in enumerate((0.5, 1.5)):
        v = torch.tensor(np.float32(a * c))
        for s in range(8):
            w[8 * k * 2 + 2 * s] = v
            w[8 * k * 2 + 2 * s + 1] = -v
            v = torch.nextafter(v, torch.tensor(float("inf")))
    out["near_ties_200"] = w
    return out


CASES = tensors()


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal values, dtypes, shapes and bit patterns (so -0.0 differs from +0.0)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == torch.float32:
        return torch.equal(a.view(torch.int32), b.view(torch.int32))
    return torch.equal(a, b)


@pytest.mark.parametrize("name", list(CASES))
def test_per_tensor_equals_the_reference(name):
    w = CASES[name]
    assert same(tilelli.absmean_scale(w), ref.absmean_scale(w))
    assert same(tilelli.ternary_values(w), ref.ternary_values(w))
    assert same(tilelli.ternary_signs(w), ref.ternary_signs(w))
    w1, w2 = w.clone().requires_grad_(True), w.clone().requires_grad_(True)
    o1, o2 = tilelli.ternarize(w1), ref.ternarize(w2)
    assert same(o1.detach(), o2.detach())
    gout = torch.linspace(-1, 1, w.numel()).reshape(w.shape)
    o1.backward(gout)
    o2.backward(gout)
    assert same(w1.grad, w2.grad)
    for band in (0.0, 0.1, 0.3):
        assert tilelli.deadzone_stats(w, band) == ref.deadzone_stats(w, band)


@pytest.mark.parametrize("name", [n for n, w in CASES.items() if w.dim() >= 2])
def test_per_row_equals_the_reference(name):
    w = CASES[name]
    assert same(tilelli.absmean_scale_per_row(w), ref.absmean_scale_per_row(w))
    assert same(tilelli.ternary_values_per_row(w), ref.ternary_values_per_row(w))
    a = ref.absmean_scale_per_row(w)
    assert same(tilelli.ternary_signs_per_row(w), torch.round(w / a).clamp(-1, 1).to(torch.int8))
    w1, w2 = w.clone().requires_grad_(True), w.clone().requires_grad_(True)
    o1, o2 = tilelli.ternarize_per_row(w1), ref.ternarize_per_row(w2)
    assert same(o1.detach(), o2.detach())
    (o1 * 3).sum().backward()
    (o2 * 3).sum().backward()
    assert same(w1.grad, w2.grad)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("alpha", [1e-6, 0.05, 0.3, 1.0, 3.0])
def test_lsq_equals_the_reference(name, alpha):
    w = CASES[name]
    s1, s2 = tilelli.LearnableScale(alpha), ref.LearnableScale(alpha)
    assert same(s1.value(), s2.value())
    w1, w2 = w.clone().requires_grad_(True), w.clone().requires_grad_(True)
    o1, o2 = tilelli.ternarize_lsq(w1, s1.value()), ref.ternarize_lsq(w2, s2.value())
    assert same(o1.detach(), o2.detach())
    gout = torch.linspace(-1, 1, w.numel()).reshape(w.shape)
    o1.backward(gout)
    o2.backward(gout)
    assert same(w1.grad, w2.grad) and same(s1.alpha.grad, s2.alpha.grad)


def test_the_errors_are_the_references():
    for mod in (tilelli, ref):
        with pytest.raises(ValueError):
            mod.absmean_scale_per_row(torch.randn(5))
        with pytest.raises(ValueError):
            mod.LearnableScale(0.0)
        with pytest.raises(ValueError):
            mod.LearnableScale(-1.0)
    assert tilelli.EPS == ref.EPS

"""Each quantizer against the committed golden fixtures of test/fixtures/quant/ (gen_quant.py's
format, documented at its top): scales and trits bit for bit, values bit for bit (including the
sign of zeros), the LSQ forward, deadzone statistics exactly."""
from __future__ import annotations

import os
import struct

import numpy as np
import pytest
import torch

import tilelli
from conftest import FIXTURES
from gen_quant import prng_input  # the generator's own input stream (test/fixtures is on sys.path)

QDIR = os.path.join(FIXTURES, "quant")


def unpack2(data: bytes, n: int) -> np.ndarray:
    b = np.frombuffer(data, dtype=np.uint8)
    codes = np.stack([(b >> s) & 3 for s in (0, 2, 4, 6)], axis=1).reshape(-1)[:n]
    return codes.astype(np.int8) - 1


def load_cases():
    lines = open(os.path.join(QDIR, "manifest.txt"), encoding="utf-8").read().splitlines()
    assert lines[0] == "tilelli-quant-fixtures 1"
    cases, cur = [], None
    for line in lines[1:]:
        if not line or line.startswith("#"):
            continue
        tok = line.split(" ")
        if tok[0] == "case":
            cur = {"name": tok[1], "lsq": [], "deadzone": []}
        elif tok[0] == "end":
            cases.append(cur)
            cur = None
        elif cur is not None:
            if tok[0] in ("lsq", "deadzone"):
                cur[tok[0]].append(tok[1:])
            else:
                cur[tok[0]] = tok[1:]
    return cases


CASES = load_cases()
BLOBS: dict = {}


def blob(case) -> bytes:
    name = case["blob"][0]
    if name not in BLOBS:
        BLOBS[name] = open(os.path.join(QDIR, name), "rb").read()
    return BLOBS[name]


def f32_at(case, off: int, n: int) -> np.ndarray:
    return np.frombuffer(blob(case), dtype="<f4", count=n, offset=off).astype(np.float32)


def trits_at(case, off: int, n: int) -> np.ndarray:
    return unpack2(blob(case)[off:off + (n + 3) // 4], n)


def bits(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy().astype(np.float32).view(np.uint32)


def test_the_fixtures_are_there():
    assert len(CASES) == 87


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_quantizers_equal_the_golden_fixtures(case):
    shape = tuple(int(d) for d in case["shape"][1:])
    n = int(np.prod(shape))
    if case["input"][0] == "f32":
        w = f32_at(case, int(case["input"][1]), n)
    else:
        w = prng_input(case["input"][1], int(case["input"][2]), n)
    t = torch.from_numpy(w.reshape(shape).copy())

    alpha = tilelli.absmean_scale(t)
    assert f"{bits(alpha.reshape(1))[0]:08x}" == case["alpha"][0]
    assert np.array_equal(tilelli.ternary_signs(t).numpy().reshape(-1), trits_at(case, int(case["trits"][0]), n))
    if "values" in case:
        want = f32_at(case, int(case["values"][0]), n).view(np.uint32)
        assert np.array_equal(bits(tilelli.ternary_values(t)).reshape(-1), want)
    # the STE forward value: trits * alpha up to the roundings of w + (q - w) (an ulp or two of |w|)
    ste = tilelli.ternarize(t.clone().requires_grad_(True)).detach()
    bound = torch.maximum(t.abs(), alpha) * 2.0**-22
    assert bool(((ste - tilelli.ternary_values(t)).abs() <= bound).all())

    if len(shape) >= 2:
        ra = tilelli.absmean_scale_per_row(t)
        assert tuple(ra.shape) == (shape[0],) + (1,) * (len(shape) - 1)
        want = f32_at(case, int(case["row_alphas"][0]), shape[0]).view(np.uint32)
        assert np.array_equal(bits(ra).reshape(-1), want)
        rt = tilelli.ternary_signs_per_row(t).numpy().reshape(-1)
        assert np.array_equal(rt, trits_at(case, int(case["row_trits"][0]), n))
        if "row_values" in case:
            want = f32_at(case, int(case["row_values"][0]), n).view(np.uint32)
            assert np.array_equal(bits(tilelli.ternary_values_per_row(t)).reshape(-1), want)
    else:
        with pytest.raises(ValueError, match="rank >= 2"):
            tilelli.absmean_scale_per_row(t)

    for hex_alpha, t_off, v_off in case["lsq"]:
        a = torch.tensor(struct.unpack("<f", bytes.fromhex(hex_alpha)[::-1])[0], dtype=torch.float32)
        assert f"{bits(a.reshape(1))[0]:08x}" == hex_alpha
        out = tilelli.ternarize_lsq(t, a)
        assert np.array_equal(tilelli.lsq_signs(t, a).numpy().reshape(-1), trits_at(case, int(t_off), n))
        if v_off != "-":
            assert np.array_equal(bits(out).reshape(-1), f32_at(case, int(v_off), n).view(np.uint32))

    for rec in case["deadzone"]:
        band = float(rec[0])
        d = tilelli.deadzone_stats(t, band)
        assert list(d) == ["alpha", "frac_neg", "frac_zero", "frac_pos", "frac_boundary", "frac_zero_inner"]
        assert [repr(float(v)) for v in d.values()] == rec[1:7]


def test_empty_tensors_are_refused_instead_of_nan():
    with pytest.raises(ValueError, match="empty"):
        tilelli.absmean_scale(torch.zeros(0))
    with pytest.raises(ValueError, match="empty"):
        tilelli.ternary_signs_per_row(torch.zeros(3, 0))


def test_learnable_scale_refuses_non_positive_and_clamps_at_eps():
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="must be > 0"):
            tilelli.LearnableScale(bad)
    s = tilelli.LearnableScale(1.0)
    with torch.no_grad():
        s.alpha.fill_(1e-9)
    assert float(s.value()) == float(np.float32(1e-5))


def test_ste_gradients_go_straight_through():
    w = torch.randn(6, 5, requires_grad=True)
    for f in (tilelli.ternarize, tilelli.ternarize_per_row):
        w.grad = None
        (f(w) * torch.arange(30.0).reshape(6, 5)).sum().backward()
        assert torch.equal(w.grad, torch.arange(30.0).reshape(6, 5))
    a = torch.tensor(0.7, requires_grad=True)
    w.grad = None
    out = tilelli.ternarize_lsq(w, a)
    out.sum().backward()
    assert torch.equal(w.grad, torch.ones(6, 5))
    assert float(a.grad) == float(tilelli.lsq_signs(w, a.detach()).float().sum())

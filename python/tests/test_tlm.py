"""The .tlm writer and reader (python/tilelli/tlm.py) against docs/FORMATS.md and the JS writer, and
tilelli.load against the runtime (tl.Model.load in Node) on every layer type."""
from __future__ import annotations

import json
import os
import struct
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

import tilelli
from conftest import NODE, REPO, node_run
from tilelli import tlm

EXAMPLE = np.array([[1, -1, 0, 0, 1, 1, -1, 0, -1, 1], [0] * 9 + [-1]], dtype=np.int8)


def test_pack_gives_the_worked_examples_of_formats_md():
    # docs/FORMATS.md, "The example matrix" in each format
    assert tlm.pack(EXAMPLE, "i2").hex() == ("5255585555555555" "5655565554555555"
                                             "5555515555555555" "5555555555555555")
    assert tlm.pack(EXAMPLE, "tq1").hex() == ("d52b8080d5d52b80" "2bd5808080808080"
                                              "8080808080808080" "802b808080808080")
    bp = tlm.pack(EXAMPLE, "bitplane")
    assert bp[0:2].hex() == "3102" and bp[16:18].hex() == "4201" and bp[49] == 2 and len(bp) == 64
    assert sum(bp) == 0x31 + 0x02 + 0x42 + 0x01 + 0x02
    for fmt in tlm.FORMATS:
        assert np.array_equal(tlm.unpack(tlm.pack(EXAMPLE, fmt), 2, 10, fmt), EXAMPLE)


def test_tq1_encodes_and_decodes_all_243_bytes_and_refuses_the_other_13():
    digits = np.array(np.meshgrid(*[[-1, 0, 1]] * 5, indexing="ij")).reshape(5, -1).T  # 243 x 5, digit 0 first
    rows = np.zeros((243, 80), dtype=np.int8)
    rows[:, [0, 16, 32, 48, 64]] = digits
    packed = np.frombuffer(tlm.pack(rows, "tq1"), dtype=np.uint8).reshape(243, 16)
    valid = set(packed[:, 0].tolist())
    assert len(valid) == 243 and packed[121, 0] == 0x80 and np.all(packed[:, 1:] == 0x80)
    assert np.array_equal(tlm.unpack(packed.tobytes(), 243, 80, "tq1"), rows)
    invalid = sorted(set(range(256)) - valid)
    assert invalid == [0x01, 0x14, 0x28, 0x3C, 0x4F, 0x63, 0x77, 0x8A, 0x9E, 0xB2, 0xC5, 0xD9, 0xED]
    for b in invalid:
        with pytest.raises(tlm.TlmError, match="243"):
            tlm.unpack(bytes([b]) + b"\x80" * 15, 1, 80, "tq1")


def test_unpack_refuses_nonzero_padding_and_invalid_codes():
    with pytest.raises(tlm.TlmError, match="padding"):
        tlm.unpack(b"\x55" * 15 + b"\x56", 1, 10, "i2")        # weight 56 (padding) is -1... code 2: +1
    with pytest.raises(tlm.TlmError, match="code 3"):
        tlm.unpack(b"\x57" + b"\x55" * 15, 1, 10, "i2")
    with pytest.raises(tlm.TlmError, match="padding"):
        tlm.unpack(b"\xd5" * 16, 1, 10, "tq1")                   # digit 0 of bytes 10..15 is padding
    with pytest.raises(tlm.TlmError, match="both"):
        tlm.unpack(b"\x01" + b"\x00" * 15 + b"\x01" + b"\x00" * 15, 1, 10, "bitplane")
    with pytest.raises(tlm.TlmError, match="padding"):
        tlm.unpack(b"\x00\x04" + b"\x00" * 30, 1, 10, "bitplane")


def rand_layers(rng, fmt="i2", int8=False):
    """A model of every layer type (int8: the first linear layer takes int8 activations, version 2)."""
    def lin(i, o, kind="linear", bias=True, **kw):
        L = {"type": kind, "trits": rng.integers(-1, 2, (o, i)).astype(np.int8),
             "scales": rng.uniform(0.01, 0.1, o).astype(np.float32), "format": fmt,
             "bias": rng.standard_normal(o).astype(np.float32) if bias else None, **kw}
        return L
    bl = lin(40, 24, "bitlinear", quantizer="per_row", name="block.0")
    bl.update({"norm_weight": rng.uniform(0.5, 1.5, 40).astype(np.float32), "eps": 1e-6})
    return [lin(30, 40, activations="int8" if int8 else "float", quantizer="lsq", name="fc1"),
            {"type": "gelu", "name": "act"}, bl, {"type": "silu"},
            {"type": "rmsnorm", "weight": rng.uniform(0.5, 1.5, 24).astype(np.float32), "eps": 0.25},
            {"type": "binarize", "k": 7}, lin(24, 20, bias=False), {"type": "relu"},
            {"type": "binarize", "threshold": 0.1}, lin(20, 18), lin(18, 16, "bitlinear"), {"type": "softmax"}]


JS_WRITE = r"""
import { init } from %s;
import { readFileSync, writeFileSync } from 'node:fs';
const [specPath, outPath] = process.argv.slice(1);
const spec = JSON.parse(readFileSync(specPath, 'utf8'));
const tl = await init();
const f32 = (a) => a === undefined ? undefined : Float32Array.from(a);
const layers = spec.layers.map((L) => {
  if (L.packed === undefined) return L;
  const matrix = tl.PackedMatrix.fromPacked(Buffer.from(L.packed, 'hex'), [L.rows, L.cols],
    { format: L.format, scales: f32(L.scales) });
  return { type: L.type, matrix, bias: f32(L.bias), normWeight: f32(L.normWeight), eps: L.eps,
           activations: L.activations, quantizer: L.quantizer, name: L.name };
});
writeFileSync(outPath, tl.packModel({ input: spec.input, layers, metadata: spec.metadata }));
"""


@pytest.mark.parametrize("fmt", tlm.FORMATS)
def test_the_writer_gives_the_js_writers_bytes(fmt, tmp_path):
    rng = np.random.default_rng(7)
    layers = rand_layers(rng, fmt, int8=fmt == "tq1")
    meta = {"source": "test", "weights": fmt}
    mine = tlm.write(None, 30, layers, meta, version=2)
    spec = {"input": 30, "metadata": meta, "layers": []}
    for L in layers:
        if L["type"] in ("linear", "bitlinear"):
            j = {"type": L["type"], "packed": tlm.pack(L["trits"], fmt).hex(), "rows": L["trits"].shape[0],
                 "cols": L["trits"].shape[1], "format": fmt, "scales": L["scales"].tolist()}
            if L["bias"] is not None:
                j["bias"] = L["bias"].tolist()
            if L.get("norm_weight") is not None:
                j["normWeight"], j["eps"] = L["norm_weight"].tolist(), L["eps"]
            for k in ("activations", "quantizer", "name"):
                if L.get(k) is not None:
                    j[k] = L[k]
        elif L["type"] == "rmsnorm":
            j = {"type": "rmsnorm", "weight": L["weight"].tolist(), "eps": L["eps"]}
        else:
            j = dict(L)
        spec["layers"].append(j)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    entry = json.dumps("file://" + os.path.join(REPO, "js", "node.js"))
    p = subprocess.run([NODE, "--input-type=module", "-e", JS_WRITE % entry, str(tmp_path / "spec.json"),
                        str(tmp_path / "js.tlm")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    theirs = (tmp_path / "js.tlm").read_bytes()
    assert mine == theirs
    # without a version-2 key the file is version 1 and holds the same model
    v1 = tlm.write(None, 30, rand_layers(np.random.default_rng(7), fmt), meta)
    assert v1[4] == 1 and theirs[4] == 2
    a, b = tlm.read(v1), tlm.read(theirs)
    strip = ("name", "quantizer", "activations")
    for x, y in zip(a.layers, b.layers):
        for k in set(x) | set(y):
            if k not in strip:
                assert np.array_equal(x[k], y[k]) if isinstance(x[k], np.ndarray) else x[k] == y[k], k


def test_load_computes_what_the_runtime_computes_on_every_layer_type(tmp_path):
    rng = np.random.default_rng(11)
    path = str(tmp_path / "all.tlm")
    tlm.write(path, 30, rand_layers(rng))
    x = rng.standard_normal((64, 30)).astype(np.float32)
    got = tilelli.load(path)(torch.from_numpy(x)).numpy()
    js = node_run([path], x, tmp_path)[path]["outputs"]
    assert got.shape == js.shape == (64, 16)
    assert np.max(np.abs(got - js)) <= 1e-6, np.max(np.abs(got - js))
    m = tilelli.load(path)
    assert [type(L).__name__ for L in m] == ["PackedLinear", "GELU", "PackedLinear", "SiLU", "PackedRMSNorm",
                                             "Binarize", "PackedLinear", "ReLU", "Binarize", "PackedLinear",
                                             "PackedLinear", "Softmax"]


def test_read_refuses_broken_files(tmp_path):
    good = tlm.write(None, 30, rand_layers(np.random.default_rng(3)))
    hlen = struct.unpack_from("<Q", good, 8)[0]
    header = json.loads(good[16:16 + hlen])

    def with_header(h, version=None):
        js = json.dumps(h, separators=(",", ":")).encode()
        n = -(-(16 + len(js)) // 16) * 16 - 16   # blob offsets are relative to the data section
        return good[:4] + struct.pack("<IQ", version or h["version"], n) + js.ljust(n) + good[16 + hlen:]

    cases = [
        (b"XLML" + good[4:], "magic"),
        (good[:4] + struct.pack("<I", 3) + good[8:], "newer"),
        (good[:8] + struct.pack("<Q", hlen + 1) + good[16:], "header length"),
    ]
    h = json.loads(json.dumps(header))
    h["layers"][0]["activations"] = "int8"
    cases.append((with_header(h), "version-2 key"))
    h = json.loads(json.dumps(header))
    h["layers"][1]["color"] = "red"
    cases.append((with_header(h), "unknown key 'color'"))
    h = json.loads(json.dumps(header))
    h["layers"][0]["bias"] = h["layers"][0]["scales"]
    cases.append((with_header(h), "overlaps"))
    h = json.loads(json.dumps(header))
    h["layers"][0]["scales"][0] += 4
    cases.append((with_header(h), "16-aligned"))
    h = json.loads(json.dumps(header))
    h["layers"][2]["in"] = 41
    cases.append((with_header(h), "takes 41 inputs"))
    bad = bytearray(good)
    bad[16 + hlen] = 0xFF  # the first i2 byte: code 3
    cases.append((bytes(bad), "code 3"))
    for data, msg in cases:
        with pytest.raises(tlm.TlmError, match=msg):
            tlm.read(data)


def test_write_refuses_bad_layers():
    L = {"type": "linear", "trits": np.zeros((4, 3), np.int8), "scales": np.ones(4, np.float32)}
    with pytest.raises(tlm.TlmError, match=r"layers\[0\] takes 3 inputs but the layer before gives 5"):
        tlm.write(None, 5, [L])
    with pytest.raises(tlm.TlmError, match="NaN"):
        tlm.write(None, 3, [dict(L, scales=np.array([1, np.nan, 1, 1], np.float32))])
    with pytest.raises(tlm.TlmError, match="need version 2"):
        tlm.write(None, 3, [dict(L, activations="int8")], version=1)
    with pytest.raises(tlm.TlmError, match="followed by a linear"):
        tlm.write(None, 3, [L, {"type": "binarize", "k": 2}])

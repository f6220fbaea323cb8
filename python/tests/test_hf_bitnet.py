"""Hugging Face packed BitNet checkpoints (python/tilelli/hf_bitnet.py) and the fixtures written with
them (test/fixtures/lm-import/): the bit order against transformers' documented example, pack and
unpack inverse, the trits and scales of each fixture against the float case it came from, the
PyTorch reference on each packed file against its golden logits, bf16 files, and the C reader
(through the CLI-free Node API) on a file written here."""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
import torch

from conftest import FIXTURES, NODE, REPO
from tilelli.hf_bitnet import load_hf_packed, pack_hf, read_hf_packed, unpack_hf, write_hf_packed
from tilelli.lm import BitNetLM, KVCache, LMConfig, LMConfigError, load_lm, runtime_ternary

IMPORT = os.path.join(FIXTURES, "lm-import")
CASES = sorted(d for d in os.listdir(IMPORT) if os.path.isdir(os.path.join(IMPORT, d)))


def test_bit_order_is_transformers_documented_example():
    # transformers' unpack_weights docstring: these two packed rows unpack to eight rows, row
    # k * 2 + p from bits 2k of packed row p
    packed = torch.tensor([[0b10100001, 0b00011000], [0b10010000, 0b00001010]], dtype=torch.uint8)
    want = [[0, -1], [-1, 1], [-1, 1], [-1, 1], [1, 0], [0, -1], [1, -1], [1, -1]]
    assert unpack_hf(packed).tolist() == want
    assert torch.equal(pack_hf(torch.tensor(want, dtype=torch.float32)), packed)


def test_pack_unpack_inverse_and_code_3():
    g = torch.Generator().manual_seed(3)
    t = torch.randint(-1, 2, (24, 10), generator=g).float()
    assert torch.equal(unpack_hf(pack_hf(t)), t)
    with pytest.raises(ValueError):
        pack_hf(t[:6])  # rows not a multiple of 4
    with pytest.raises(LMConfigError):
        unpack_hf(torch.full((1, 3), 0xFF, dtype=torch.uint8))


@pytest.mark.parametrize("name", [c for c in CASES if c.startswith("hf-")])
def test_fixture_holds_the_float_cases_trits_and_scales(name):
    case, cls = name[3:].rsplit("-", 1)
    src = load_lm(os.path.join(FIXTURES, "lm", case))
    cfg, projs, floats = read_hf_packed(os.path.join(IMPORT, name))
    assert cfg["quantization_config"]["linear_class"] == cls
    state = src.state_dict()
    assert set(projs) | set(floats) == set(state)
    for k, (trits, alpha) in projs.items():
        want_t, want_a = runtime_ternary(state[k])
        assert torch.equal(trits, want_t), k
        if cls == "autobitlinear":
            assert alpha == want_a, k  # stored as it is
        else:
            # stored as 1 / alpha in float32: back within an ulp
            assert abs(float(alpha) - float(want_a)) <= float(np.spacing(np.float32(want_a))), k
    for k, v in floats.items():
        assert torch.equal(v, state[k].float()), k


@pytest.mark.parametrize("name", CASES)
def test_reference_on_the_packed_file_gives_the_golden(name):
    with open(os.path.join(IMPORT, name, "golden.json"), encoding="utf-8") as fh:
        g = json.load(fh)
    model = load_hf_packed(os.path.join(IMPORT, name)).eval()
    for act, key, tol in (("float", "logits_float", 1e-4), ("int8", "logits_int8", 1e-3)):
        model.set_mode("exact", act)
        cache = KVCache(model.config)
        with torch.no_grad():
            rows = [model(g["prompt"], cache)[-1]] + [model([t], cache)[-1] for t in g["steps"]]
        want = torch.tensor(g[key])
        rel = ((torch.stack(rows) - want).abs().amax(-1) / want.abs().amax(-1)).max()
        assert float(rel) < tol, f"{name} {act}: {float(rel)}"


def test_bitnet256_alphas_are_float16_values():
    # the GGUF TQ types carry float16 block scales: this case's alphas are float16 values, so our
    # GGUF files of it keep its numbers
    _, projs, _ = read_hf_packed(os.path.join(IMPORT, "bitnet256"))
    for k, (_, alpha) in projs.items():
        assert float(alpha.to(torch.float16).to(torch.float32)) == float(alpha), k


def test_bf16_file_round_trip(tmp_path):
    cfg = LMConfig(vocab_size=20, hidden_size=16, intermediate_size=24, num_hidden_layers=1,
                   num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=16)
    model = BitNetLM(cfg).init_weights(torch.Generator().manual_seed(5), std=1.0, norm_jitter=0.1)
    for cls in ("bitlinear", "autobitlinear"):
        d = str(tmp_path / cls)
        write_hf_packed(model, d, cls, float_dtype="BF16", scale_dtype="BF16")
        _, projs, floats = read_hf_packed(d)
        state = model.state_dict()
        for k, (trits, alpha) in projs.items():
            t, a = runtime_ternary(state[k])
            assert torch.equal(trits, t)
            a16 = a.to(torch.bfloat16).to(torch.float32)
            want = a16 if cls == "autobitlinear" else 1.0 / (1.0 / a).to(torch.bfloat16).to(torch.float32)
            assert float(alpha) == float(want)
        for k, v in floats.items():
            assert torch.equal(v, state[k].to(torch.bfloat16).to(torch.float32)), k


def test_the_c_reader_agrees_with_the_reference_on_a_bf16_file(tmp_path):
    """The bf16 file (as 2B4T ships: bf16 norms, embeddings and scales) through tilelli's C reader in
    wasm gives the PyTorch reference's float logits on the same file."""
    cfg = LMConfig(vocab_size=24, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16,
                   tilelli_activations="float")
    model = BitNetLM(cfg).init_weights(torch.Generator().manual_seed(8), std=1.0, norm_jitter=0.1)
    d = str(tmp_path / "bf16")
    write_hf_packed(model, d, "bitlinear", float_dtype="BF16", scale_dtype="BF16")
    ref = load_hf_packed(d).eval().set_mode("exact", "float")
    toks = [3, 1, 4, 1, 5, 9, 2, 6]
    with torch.no_grad():
        want = ref(toks)
    script = (
        "import { readFileSync } from 'node:fs'; import { init } from './js/node.js';"
        "const tl = await init(); const d = process.argv[1];"
        "const lm = tl.LanguageModel.load({ config: readFileSync(d + '/config.json'), weights: readFileSync(d + '/model.safetensors') },"
        " { activations: 'float' });"
        "process.stdout.write(JSON.stringify(Array.from(lm.logits(JSON.parse(process.argv[2]), { all: true }))));")
    out = subprocess.run([NODE, "--input-type=module", "-e", script, d, json.dumps(toks)], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    got = torch.tensor(json.loads(out), dtype=torch.float32).reshape(want.shape)
    rel = ((got - want).abs().amax(-1) / want.abs().amax(-1)).max()
    assert float(rel) < 1e-4, float(rel)

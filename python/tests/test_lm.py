"""The language model (python/tilelli/lm.py) and its fixtures (test/fixtures/lm/): prefill against
step-by-step decoding, the exact-runtime mode against the training mode and against an independent
float64 numpy reading of the spec, save/load, config errors, the goldens, the trained char model."""
from __future__ import annotations

import json
import math
import os
import struct

import numpy as np
import pytest
import torch

from conftest import FIXTURES, NODE, REPO
from safetensors_io import read_safetensors as independent_read
from tilelli.lm import (BitNetLM, KVCache, LMConfig, LMConfigError, boundary_distance, load_lm,
                        read_safetensors, write_safetensors)

LM = os.path.join(FIXTURES, "lm")
CASES = sorted(d for d in os.listdir(LM) if os.path.exists(os.path.join(LM, d, "golden.json")))
CHARLM = os.path.join(LM, "charlm")


def golden(name):
    with open(os.path.join(LM, name, "golden.json"), encoding="utf-8") as fh:
        return json.load(fh)


def rel_err(a, b) -> float:
    """max over rows of max |a - b| / max |b|."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float((np.abs(a - b).max(-1) / np.abs(b).max(-1)).max())


def test_fixtures_cover_gqa_and_not_tied_and_not_relu2_and_silu():
    assert len(CASES) >= 4
    cfgs = [LMConfig.read(os.path.join(LM, c, "config.json")) for c in CASES]
    assert {c.num_key_value_heads < c.num_attention_heads for c in cfgs} == {True, False}
    assert {c.tie_word_embeddings for c in cfgs} == {True, False}
    assert {c.hidden_act for c in cfgs} == {"relu2", "silu"}
    assert any(c.head_dim is not None and c.head_dim * c.num_attention_heads != c.hidden_size for c in cfgs)
    for c in cfgs:
        assert 50 <= c.vocab_size <= 300 and 32 <= c.hidden_size <= 64 and c.num_hidden_layers == 2
    total = sum(os.path.getsize(os.path.join(LM, c, f)) for c in CASES for f in os.listdir(os.path.join(LM, c)))
    assert total < 700_000, f"the tiny fixtures grew to {total} bytes"


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("activations", ["int8", "float"])
def test_exact_mode_prefill_equals_step_by_step_decode_bit_for_bit(name, activations):
    model = load_lm(os.path.join(LM, name)).set_mode("exact", activations)
    ids = torch.randint(0, model.config.vocab_size, (12,), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        whole = model(ids)
        cache = KVCache(model.config)
        parts = [model(ids[:5], cache)] + [model(ids[i:i + 1], cache) for i in range(5, 9)] + [model(ids[9:], cache)]
    assert cache.length == 12
    assert torch.equal(whole, torch.cat(parts))


@pytest.mark.parametrize("name", CASES)
def test_train_mode_cache_matches_its_own_prefill(name):
    model = load_lm(os.path.join(LM, name)).set_mode("train", "float")
    ids = torch.randint(0, model.config.vocab_size, (10,), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        whole = model(ids)
        cache = KVCache(model.config)
        steps = torch.cat([model(ids[:4], cache)] + [model(ids[i:i + 1], cache) for i in range(4, 10)])
    assert rel_err(steps, whole) < 1e-5


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("activations", ["int8", "float"])
def test_exact_and_training_modes_agree_on_predictions(name, activations):
    model = load_lm(os.path.join(LM, name))
    g = golden(name)
    ids = g["prompt"] + g["steps"]  # inputs checked to sit away from int8 rounding boundaries
    with torch.no_grad():
        exact = model.set_mode("exact", activations)(ids)
        train = model.set_mode("train", activations)(ids)
    assert torch.equal(exact.argmax(-1), train.argmax(-1))
    assert rel_err(train, exact) < 1e-5


def test_training_mode_learns_through_the_ste():
    cfg = LMConfig(vocab_size=20, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16)
    torch.manual_seed(0)
    model = BitNetLM(cfg).init_weights(torch.Generator().manual_seed(0), std=0.5, proj_std=0.05)
    x = torch.tensor([[i % 5 for i in range(16)]] * 4)   # a period-5 sequence
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(x[:, :-1]).reshape(-1, 20), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.2 * losses[0]


@pytest.mark.parametrize("name", CASES)
def test_goldens_reproduce(name):
    g = golden(name)
    model = load_lm(os.path.join(LM, name))
    for act, key in (("float", "logits_float"), ("int8", "logits_int8")):
        model.set_mode("exact", act)
        with torch.no_grad():
            cache = KVCache(model.config)
            rows = [model(g["prompt"], cache)[-1]] + [model([t], cache)[-1] for t in g["steps"]]
        want = np.array(g[key], dtype=np.float32)
        assert want.shape == (1 + len(g["steps"]), model.config.vocab_size)
        assert rel_err(torch.stack(rows).numpy(), want) < 1e-6, key
    model.set_mode("exact", "int8")
    out, margin = model.boundary_margin(lambda: model.generate(g["prompt"], len(g["greedy"])))
    assert out == g["greedy"]
    assert margin >= 1e-3 or margin >= g["margin"] * 0.999
    assert g["margin"] > 10 * g["perturbation"] and g["greedy_gap"] > 0.01


@pytest.mark.parametrize("name", CASES)
def test_golden_logits_are_float32_values_written_to_round_trip(name):
    g = golden(name)
    for key in ("logits_float", "logits_int8"):
        # each value is the shortest decimal of a float32: it reads back to that float32 (strtod then
        # (float), or strtof) and prints back the same
        for v in np.array(g[key], dtype=np.float64).ravel():
            assert float(repr(np.float32(v))) == v


# ---- an independent reading of the spec: numpy, float64 everywhere except the quantizers -----
def spec_forward(d: str, ids: list, activations: str) -> np.ndarray:
    """Logits [len(ids), vocab] computed from the spec text with numpy, token by token over a cache."""
    with open(os.path.join(d, "config.json"), encoding="utf-8") as fh:
        c = json.load(fh)
    W = {k: v.astype(np.float64) for k, v in independent_read(os.path.join(d, "model.safetensors"))[0]}
    H, nh, nkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd = c.get("head_dim") or H // nh
    eps = c["rms_norm_eps"]

    def norm(x, w):
        return x / np.sqrt(np.mean(x * x) + eps) * w

    def bitlinear(x, w):
        alpha = max(np.abs(w).mean(), 1e-5)
        t = np.clip(np.round(w / alpha), -1, 1)
        if activations == "float":
            return (t @ x) * alpha
        s = 127.0 / max(np.abs(x).max(), 1e-5)
        q = np.clip(np.round(x * s), -128, 127)
        return (t @ q) * alpha / s

    def rope(v, p):
        out = v.copy()
        for j in range(hd // 2):
            a = p * c["rope_theta"] ** (-2.0 * j / hd)
            x0, x1 = v[j], v[j + hd // 2]
            out[j], out[j + hd // 2] = x0 * math.cos(a) - x1 * math.sin(a), x1 * math.cos(a) + x0 * math.sin(a)
        return out

    L = c["num_hidden_layers"]
    K = [[] for _ in range(L)]
    V = [[] for _ in range(L)]
    head = W["model.embed_tokens.weight"] if c["tie_word_embeddings"] else W["lm_head.weight"]
    out = []
    for p, tok in enumerate(ids):
        h = W["model.embed_tokens.weight"][tok].copy()
        for i in range(L):
            pre = f"model.layers.{i}."
            x = norm(h, W[pre + "input_layernorm.weight"])
            q = bitlinear(x, W[pre + "self_attn.q_proj.weight"]).reshape(nh, hd)
            k = bitlinear(x, W[pre + "self_attn.k_proj.weight"]).reshape(nkv, hd)
            v = bitlinear(x, W[pre + "self_attn.v_proj.weight"]).reshape(nkv, hd)
            K[i].append(np.stack([rope(k[j], p) for j in range(nkv)]))
            V[i].append(v)
            att = np.zeros((nh, hd))
            for hh in range(nh):
                kv = hh // (nh // nkv)
                qr = rope(q[hh], p)
                sc = np.array([qr @ K[i][t][kv] for t in range(p + 1)]) / math.sqrt(hd)
                e = np.exp(sc - sc.max())
                att[hh] = sum((e[t] / e.sum()) * V[i][t][kv] for t in range(p + 1))
            a = norm(att.reshape(-1), W[pre + "self_attn.attn_sub_norm.weight"])
            h = h + bitlinear(a, W[pre + "self_attn.o_proj.weight"])
            x = norm(h, W[pre + "post_attention_layernorm.weight"])
            gt = bitlinear(x, W[pre + "mlp.gate_proj.weight"])
            up = bitlinear(x, W[pre + "mlp.up_proj.weight"])
            act = np.maximum(gt, 0) ** 2 if c["hidden_act"] == "relu2" else gt / (1 + np.exp(-gt))
            m = norm(act * up, W[pre + "mlp.ffn_sub_norm.weight"])
            h = h + bitlinear(m, W[pre + "mlp.down_proj.weight"])
        out.append(head @ norm(h, W["model.norm.weight"]))
    return np.array(out)


@pytest.mark.parametrize("name", CASES)
def test_goldens_match_an_independent_float64_reading_of_the_spec(name):
    g = golden(name)
    ids = g["prompt"] + g["steps"]
    n = len(g["prompt"]) - 1
    for act, key, tol in (("float", "logits_float", 1e-5), ("int8", "logits_int8", 1e-5)):
        ref = spec_forward(os.path.join(LM, name), ids, act)[n:]
        assert rel_err(g[key], ref) < tol, key


# ---- files -------------------------------------------------------------------------------------
def tiny_config(**kw):
    d = dict(vocab_size=40, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=16, rms_norm_eps=1e-5, rope_theta=10000.0,
             hidden_act="relu2", tie_word_embeddings=False)
    d.update(kw)
    return d


def test_save_and_load_round_trip_bit_for_bit(tmp_path):
    model = BitNetLM(LMConfig.from_dict(tiny_config(hidden_act="silu"))).init_weights(
        torch.Generator().manual_seed(1), std=1.0, norm_jitter=0.1)
    model.save(str(tmp_path))
    again = load_lm(str(tmp_path))
    assert again.config == model.config
    a, b = model.state_dict(), again.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    tensors, meta = independent_read(str(tmp_path / "model.safetensors"))
    assert [n for n, _ in tensors] == list(a) and all(v.dtype == np.float32 for _, v in tensors)
    assert "lm_head.weight" in a and meta == {"format": "pt"}
    ids = [1, 5, 9, 3]
    with torch.no_grad():
        assert torch.equal(model.set_mode("exact")(ids), again.set_mode("exact")(ids))
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["architectures"] == ["BitNetForCausalLM"] and "head_dim" not in cfg


def raw_header(path) -> dict:
    """A safetensors file's JSON header, read here (not by lm.py)."""
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        return json.loads(fh.read(n))


def test_save_f16_rounds_to_nearest_even_and_reads_back_what_it_wrote(tmp_path):
    model = BitNetLM(LMConfig.from_dict(tiny_config())).init_weights(
        torch.Generator().manual_seed(3), std=1.0, norm_jitter=0.1)
    want = {k: v.numpy().astype(np.float16) for k, v in model.state_dict().items()}
    model.save(str(tmp_path), dtype="F16")
    st = tmp_path / "model.safetensors"
    hdr = raw_header(st)
    assert hdr.pop("__metadata__") == {"format": "pt"} and list(hdr) == list(want)
    first = st.read_bytes()
    data = first[8 + int.from_bytes(first[:8], "little"):]
    assert len(data) == 2 * sum(a.size for a in want.values())
    for k, info in hdr.items():
        assert info["dtype"] == "F16" and info["shape"] == list(want[k].shape)
        b, e = info["data_offsets"]
        assert data[b:e] == want[k].astype("<f2").tobytes(), k
    assert json.loads((tmp_path / "config.json").read_text())["torch_dtype"] == "float16"
    again = load_lm(str(tmp_path))
    assert again.config == model.config
    assert all(np.array_equal(v.numpy(), want[k].astype(np.float32)) for k, v in again.state_dict().items())
    assert sum(not np.array_equal(v.numpy(), want[k].astype(np.float32)) for k, v in model.state_dict().items()) > 0
    again.save(str(tmp_path), dtype="F16")                   # float16 values are written unchanged
    assert st.read_bytes() == first
    # ties go to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10, 1 + 3 * 2^-11 between 1 + 2^-10 and 1 + 2^-9
    write_safetensors(str(st), [("x", np.array([1 + 2**-11, 1 + 3 * 2**-11, -(1 + 2**-11)], dtype=np.float32))],
                      dtype="F16")
    assert read_safetensors(str(st))[0][0][1].tolist() == [1.0, 1 + 2**-9, -1.0]
    with pytest.raises(ValueError, match=r"tensor big: a value beyond F16's range \(70000.0\)"):
        write_safetensors(str(st), [("big", np.array([1.0, 70000.0], dtype=np.float32))], dtype="F16")
    with pytest.raises(ValueError, match="dtype must be one of F32, F16, got 'BF16'"):
        model.save(str(tmp_path), dtype="BF16")


def test_load_reads_bf16_and_f16_tensors(tmp_path):
    model = BitNetLM(LMConfig.from_dict(tiny_config(tie_word_embeddings=True))).init_weights(
        torch.Generator().manual_seed(2))
    model.save(str(tmp_path))
    tensors, _ = read_safetensors(str(tmp_path / "model.safetensors"))
    header, blobs, off = {}, [], 0
    for i, (name, a) in enumerate(tensors):
        if i % 2:
            b = (a.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()   # truncated to bf16
            dt = "BF16"
        else:
            b = a.astype("<f2").tobytes()
            dt = "F16"
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    js = json.dumps(header).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(js)) + js + b"".join(blobs))
    again = load_lm(str(tmp_path))
    for i, (name, a) in enumerate(tensors):
        want = ((a.view(np.uint32) >> 16) << 16).view(np.float32) if i % 2 else a.astype(np.float16).astype(np.float32)
        assert np.array_equal(again.state_dict()[name].numpy(), want), name


@pytest.mark.parametrize("change, message", [
    ({"hidden_act": "gelu"}, "'hidden_act' must be one of relu2, silu"),
    ({"num_key_value_heads": 3}, "'num_key_value_heads' must divide num_attention_heads"),
    ({"hidden_size": 30}, "'hidden_size' must be a multiple of num_attention_heads"),
    ({"head_dim": 7}, "head size must be even"),
    ({"vocab_size": 0}, "'vocab_size' must be a positive integer"),
    ({"num_hidden_layers": 2.0}, "'num_hidden_layers' must be a positive integer"),
    ({"rms_norm_eps": -1.0}, "'rms_norm_eps' must be a finite number > 0"),
    ({"tie_word_embeddings": "yes"}, "'tie_word_embeddings' must be true or false"),
    ({"bos_token_id": 40}, r"'bos_token_id' must be a token id in \[0, 40\)"),
    ({"tilelli_activations": "int4"}, "'tilelli_activations' must be one of int8, float"),
    ({"tilelli_quantizer": "per_row"}, "'tilelli_quantizer' must be one of per_tensor"),
])
def test_config_errors_name_the_key(tmp_path, change, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(tiny_config(**change)))
    with pytest.raises(LMConfigError, match=message) as e:
        LMConfig.read(str(path))
    assert str(path) in str(e.value)


def test_config_missing_keys_and_bad_json_are_named(tmp_path):
    d = tiny_config()
    del d["rope_theta"], d["hidden_act"]
    with pytest.raises(LMConfigError, match="missing keys rope_theta, hidden_act"):
        LMConfig.from_dict(d)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(LMConfigError, match="not JSON"):
        LMConfig.read(str(tmp_path / "config.json"))
    extra = tiny_config(head_dim=None, architectures=["X"], torch_dtype="bfloat16")  # ignored / defaulted
    assert LMConfig.from_dict(extra).head_size == 8


def test_load_names_a_missing_unexpected_or_misshapen_tensor(tmp_path):
    model = BitNetLM(LMConfig.from_dict(tiny_config()))
    model.save(str(tmp_path))
    tensors, _ = read_safetensors(str(tmp_path / "model.safetensors"))
    st = str(tmp_path / "model.safetensors")
    write_safetensors(st, [t for t in tensors if t[0] != "model.layers.1.mlp.up_proj.weight"])
    with pytest.raises(LMConfigError, match=r"missing tensor model.layers.1.mlp.up_proj.weight \(shape \[40, 32\]\)"):
        load_lm(str(tmp_path))
    write_safetensors(st, [(n, a[:, :16] if n.endswith("q_proj.weight") else a) for n, a in tensors])
    with pytest.raises(LMConfigError, match=r"tensor model.layers.0.self_attn.q_proj.weight has shape \[32, 16\]"):
        load_lm(str(tmp_path))
    tied = tiny_config(tie_word_embeddings=True)
    (tmp_path / "config.json").write_text(json.dumps(tied))
    write_safetensors(st, tensors)
    with pytest.raises(LMConfigError, match="unexpected tensor lm_head.weight"):
        load_lm(str(tmp_path))
    header = json.dumps({"x": {"dtype": "I8", "shape": [1], "data_offsets": [0, 1]}}).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0")
    with pytest.raises(LMConfigError, match="tensor x has dtype I8"):
        load_lm(str(tmp_path))


def test_forward_refuses_bad_ids_and_a_full_cache():
    model = BitNetLM(LMConfig.from_dict(tiny_config()))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 40\)"):
        model([1, 40])
    with pytest.raises(ValueError, match="exceed max_position_embeddings 16"):
        model(list(range(17)))
    cache = KVCache(model.config, capacity=4)
    model([1, 2, 3], cache)
    with pytest.raises(ValueError, match="3 cached \\+ 2 tokens exceed the cache's 4"):
        model([1, 2], cache)


def test_boundary_distance():
    assert boundary_distance(torch.tensor([0.0, 2.49, -126.0])) == pytest.approx(0.01, rel=1e-5)
    assert boundary_distance(torch.tensor([127.0])) == 0.5


# ---- the trained character model -------------------------------------------------------------
def test_charlm_files_load_and_the_tokenizer_is_the_documented_char_form():
    model = load_lm(CHARLM)
    c = model.config
    assert c.num_key_value_heads < c.num_attention_heads and c.tie_word_embeddings and c.hidden_act == "relu2"
    # float16, as scripts/train_lm.py writes it, under the repository's 2 MiB limit for a tracked file
    st = os.path.join(CHARLM, "model.safetensors")
    hdr = raw_header(st)
    assert hdr.pop("__metadata__") == {"format": "pt"} and {v["dtype"] for v in hdr.values()} == {"F16"}
    assert list(hdr) == list(model.state_dict()) and os.path.getsize(st) < 2 * 2**20
    with open(os.path.join(CHARLM, "tokenizer.json"), encoding="utf-8") as fh:
        tok = json.load(fh)
    assert tok["type"] == "char" and tok["version"] == 1 and len(tok["vocab"]) == c.vocab_size
    assert len(set(tok["vocab"])) == len(tok["vocab"]) and tok["unk"] in tok["special"]
    assert all(len(t) == 1 for t in tok["vocab"] if t not in tok["special"])
    assert set(tok["vocab"]) >= {"\n"} | {chr(i) for i in range(32, 127)}


def test_charlm_predicts_jargon_file_text_well_with_the_runtime_numbers():
    import gzip
    path = "/usr/share/doc/jargon-text/jargon.txt.gz"
    if not os.path.exists(path):
        pytest.fail("jargon-text is not installed: run scripts/setup.sh")
    import sys
    sys.path.insert(0, os.path.join(REPO, "scripts"))
    import train_lm
    data = train_lm.encode(train_lm.read_text(path))
    val = data[int(len(data) * 0.95):]                       # the held-out 5%
    model = load_lm(CHARLM).set_mode("exact", "int8")
    loss = train_lm.evaluate(model, val, model.config.max_position_embeddings, max_windows=8)
    # uniform: ln 97 = 4.57; the characters' unigram entropy is about 3 nats
    assert loss < 2.0, f"{loss:.3f} nats/char on 8 windows of held-out text"


def test_charlm_tokenizer_encodes_in_js_as_the_training_script_does():
    import subprocess
    import sys
    sys.path.insert(0, os.path.join(REPO, "scripts"))
    import train_lm
    text = train_lm.read_text()[20000:22000] + "caf\u00e9 \u2603\ttab <unk>"
    script = ("import { Tokenizer } from %s; import { readFileSync } from 'node:fs';"
              "const t = Tokenizer.fromJSON(JSON.parse(readFileSync(process.argv[1], 'utf8')));"
              "const ids = Array.from(t.encode(process.argv[2]));"
              "process.stdout.write(JSON.stringify({ ids, text: t.decode(ids) }));")
    entry = json.dumps("file://" + os.path.join(REPO, "js", "tokenizer.js"))
    p = subprocess.run([NODE, "--input-type=module", "-e", script % entry, os.path.join(CHARLM, "tokenizer.json"), text],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    # "<unk>" written in the text is the special token itself, one id, as in the Hugging Face tokenizers
    assert out["ids"] == train_lm.encode(text[:-5]).tolist() + [0]
    assert out["text"] == text.replace("\u00e9", "<unk>").replace("\u2603", "<unk>").replace("\t", "<unk>")


def test_charlm_expected_float_logits_and_greedy_reproduce():
    with open(os.path.join(CHARLM, "expected.json"), encoding="utf-8") as fh:
        e = json.load(fh)
    model = load_lm(CHARLM).set_mode("exact", "float")
    with torch.no_grad():
        cache = KVCache(model.config)
        rows = [model(e["prompt"], cache)[-1]] + [model([t], cache)[-1] for t in e["steps"]]
        greedy = model.generate(e["prompt"], len(e["greedy_float"]))
    assert rel_err(torch.stack(rows).numpy(), np.array(e["logits_float"], dtype=np.float32)) < 1e-6
    assert greedy == e["greedy_float"] and e["greedy_gap"] > 1e-3


NODE_LM = r"""
import { init } from %s;
import { readFileSync } from 'node:fs';
const [root, names] = JSON.parse(process.argv[1]);
const out = {};
for (const simd of [true, false]) {
  const tl = await init({ simd });
  for (const name of names) {
    const d = `${root}/${name}`;
    const g = JSON.parse(readFileSync(`${d}/golden.json`, 'utf8'));
    const files = { config: readFileSync(`${d}/config.json`, 'utf8'), weights: readFileSync(`${d}/model.safetensors`) };
    const r = {};
    for (const act of ['float', 'int8']) {
      const lm = tl.LanguageModel.load(files, { activations: act });
      const rows = [Array.from(lm.logits(g.prompt))];
      for (const t of g.steps) rows.push(Array.from(lm.logits([t])));
      lm.reset();
      let l = lm.logits(g.prompt);
      const greedy = [];
      for (let i = 0; i < g.greedy.length; i++) {
        let a = 0;
        for (let j = 1; j < l.length; j++) if (l[j] > l[a]) a = j;
        greedy.push(a);
        if (i + 1 < g.greedy.length) l = lm.logits([a]);
      }
      r[act] = { rows, greedy };
      lm.free();
    }
    out[`${simd ? 'simd' : 'scalar'}/${name}`] = r;
  }
}
process.stdout.write(JSON.stringify(out));
"""


def test_the_runtime_in_node_reproduces_the_goldens_in_both_wasm_builds():
    import subprocess
    entry = json.dumps("file://" + os.path.join(REPO, "js", "node.js"))
    p = subprocess.run([NODE, "--input-type=module", "-e", NODE_LM % entry, json.dumps([LM, CASES])],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert len(out) == 2 * len(CASES)
    for key, r in out.items():
        g = golden(key.split("/")[1])
        assert rel_err(r["float"]["rows"], g["logits_float"]) < 1e-4, key
        assert rel_err(r["int8"]["rows"], g["logits_int8"]) < 1e-3, key
        assert r["int8"]["greedy"] == g["greedy"], key

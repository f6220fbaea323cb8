#!/usr/bin/env python3
"""Fixtures of the importers (test/fixtures/lm-import/<name>/): Hugging Face packed BitNet
checkpoints written by python/tilelli/hf_bitnet.py, each with the golden logits of the PyTorch
reference (python/tilelli/lm.py, exact mode) for the same trits and scales.

    hf-<case>-<linear_class>   a tiny case of test/fixtures/lm (its float latent weights quantized
                               as the runtime does: runtime_ternary), packed; golden.json is the
                               case's own (the same trits and alphas: autobitlinear stores alpha,
                               bitlinear 1 / alpha in float32)
    bitnet256                  a new random case whose projection widths are multiples of 256, so
                               that the GGUF block types (TQ1_0, TQ2_0: 256-weight blocks with a
                               float16 scale) hold it: every alpha is made a float16 value, so the
                               GGUF files that tilelli writes of it (test/js/lm-import.test.js)
                               carry the same numbers; packed as autobitlinear; golden from
                               gen_lm_fixtures.search on the latent model

    /usr/bin/python3 scripts/gen_lm_import_fixtures.py
"""
from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "python"))
sys.path.insert(0, os.path.join(REPO, "scripts"))

import gen_lm_fixtures as G  # noqa: E402
from tilelli.hf_bitnet import load_hf_packed, write_hf_packed  # noqa: E402
from tilelli.lm import BitNetLM, LMConfig, load_lm, runtime_absmean  # noqa: E402

OUT = os.path.join(REPO, "test", "fixtures", "lm-import")
LM = os.path.join(REPO, "test", "fixtures", "lm")

COPIES = [("gqa_tied_relu2", "autobitlinear"), ("mha_untied_silu", "bitlinear"),
          ("mqa_tied_relu2_hd16", "bitlinear"), ("gqa_untied_silu_h48", "autobitlinear")]

BIG = dict(name="bitnet256", seed=21,
           config=dict(vocab_size=64, hidden_size=256, intermediate_size=256, num_hidden_layers=1,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
                       rms_norm_eps=1e-5, rope_theta=10000.0, hidden_act="relu2", tie_word_embeddings=True,
                       bos_token_id=1, eos_token_id=2))


def f16_alphas(model: BitNetLM) -> None:
    """Scale each projection so that its runtime alpha is a float16 value (then nudge its largest
    element until the float32 mean lands exactly on it)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "proj" not in name:
                continue
            target = runtime_absmean(p).to(torch.float16).to(torch.float32)
            p.mul_(target / runtime_absmean(p))
            i = int(p.abs().argmax())
            for _ in range(200):
                a = runtime_absmean(p)
                if a == target:
                    break
                flat = p.view(-1)
                step = float((target.double() - a.double()) * p.numel())
                flat[i] = float(flat[i]) + (step if flat[i] > 0 else -step)
            assert runtime_absmean(p) == target, f"{name}: alpha {float(runtime_absmean(p))} is not {float(target)}"


def check(d: str, golden: dict) -> None:
    """The PyTorch reference on the written file gives the golden logits (float: 1e-4)."""
    model = load_hf_packed(d).eval().set_mode("exact", "float")
    with torch.no_grad():
        rows, _, _ = G.run_case(model, golden["prompt"], golden["steps"], "float", 0, "exact")
    want = torch.tensor(golden["logits_float"])
    rel = float(((rows - want).abs().amax(-1) / want.abs().amax(-1)).max())
    assert rel < 1e-4, f"{d}: the reference on the packed file is {rel} from the golden"
    print(f"{os.path.basename(d)}: packed file checked against its golden ({rel:.1e})")


def main() -> None:
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for case, cls in COPIES:
        d = os.path.join(OUT, f"hf-{case}-{cls}")
        model = load_lm(os.path.join(LM, case)).eval()
        write_hf_packed(model, d, cls)
        shutil.copyfile(os.path.join(LM, case, "golden.json"), os.path.join(d, "golden.json"))
        with open(os.path.join(d, "golden.json"), encoding="utf-8") as fh:
            check(d, json.load(fh))
    cfg = LMConfig(**BIG["config"])
    g = torch.Generator().manual_seed(BIG["seed"])
    model = BitNetLM(cfg).init_weights(g, std=1.0, norm_jitter=0.1).eval()
    f16_alphas(model)

    def draw(trial):
        rg = torch.Generator().manual_seed(BIG["seed"] * 100003 + trial)
        ids = torch.randint(0, cfg.vocab_size, (G.PROMPT_LEN + G.STEPS,), generator=rg).tolist()
        return ids[:G.PROMPT_LEN], ids[G.PROMPT_LEN:]

    # the packed file stores the trits: a latent weight near a trit boundary cannot flip in it
    golden = G.search(BIG["name"], model, draw, G.GREEDY, G.MAX_TRIES, G.MIN_MARGIN, min_weight_margin=-1.0)
    d = os.path.join(OUT, BIG["name"])
    write_hf_packed(model, d, "autobitlinear")
    G.write_golden(d, golden)
    check(d, golden)


if __name__ == "__main__":
    main()

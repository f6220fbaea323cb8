#!/usr/bin/env python3
"""Train tilelli's small character-level ternary language model (test/fixtures/lm/charlm/).

The text is the Jargon File (public domain; Debian's `jargon-text`, /usr/share/doc/jargon-text/
jargon.txt.gz), cleaned to printable ASCII lines; the last 5% is held out. The model is
python/tilelli/lm.py's BitNetLM (BitNet b1.58 layers: ternary projections with int8 activations
through the straight-through estimator), trained in float32 on one CPU thread with a fixed seed and
a fixed number of steps, so a rerun gives the same weights on the same torch build.

Writes config.json, model.safetensors (the latent weights as float16, rounded to nearest even: 1.4
MiB, under the repository's 2 MiB limit for a tracked file) and tokenizer.json (the character
tokenizer file of docs/FORMATS.md), then reads the model back and prints its losses and samples:
every number after training is the written file's.

    /usr/bin/python3 scripts/train_lm.py                 # about 15 minutes on one core (650 steps)
    /usr/bin/python3 scripts/train_lm.py --steps 50 --out /tmp/charlm   # a quick look
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "python"))

from tilelli.lm import BitNetLM, LMConfig, load_lm  # noqa: E402

JARGON = "/usr/share/doc/jargon-text/jargon.txt.gz"
UNK = "<unk>"
# id 0 is <unk>, then newline, then printable ASCII in code order
VOCAB = [UNK, "\n"] + [chr(c) for c in range(0x20, 0x7F)]
FOLD = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "--",
        "\u2026": "...", "\u00a0": " ", "\u2022": "*", "\u00b7": "*"}
BOX = re.compile("[\u2500-\u257f]")


def read_text(path: str = JARGON) -> str:
    """The Jargon File as plain lines: box-drawing tables dropped, typographic punctuation folded to
    ASCII, whitespace runs collapsed, at most one blank line in a row. Other characters stay (and
    encode to <unk>)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        raw = fh.read()
    lines, blank = [], True
    for line in raw.splitlines():
        if BOX.search(line):
            continue
        line = " ".join("".join(FOLD.get(ch, ch) for ch in line).split())
        if not line:
            if not blank:
                lines.append("")
            blank = True
            continue
        lines.append(line)
        blank = False
    return "\n".join(lines) + "\n"


def encode(text: str) -> np.ndarray:
    ids = {t: i for i, t in enumerate(VOCAB)}
    return np.array([ids.get(ch, 0) for ch in text], dtype=np.uint8)


def decode(ids) -> str:
    return "".join("\ufffd" if i == 0 else VOCAB[i] for i in ids)


def tokenizer_json() -> dict:
    """docs/FORMATS.md, "The character tokenizer file (JSON), version 1"."""
    return {"type": "char", "version": 1, "vocab": VOCAB, "special": [UNK], "unk": UNK,
            "add_bos": False, "add_eos": False}


def batches(data: np.ndarray, batch: int, ctx: int, g: torch.Generator):
    n = len(data) - ctx - 1
    while True:
        starts = torch.randint(0, n, (batch,), generator=g).numpy()
        x = np.stack([data[s:s + ctx + 1] for s in starts]).astype(np.int64)
        yield torch.from_numpy(x[:, :-1]), torch.from_numpy(x[:, 1:])


@torch.no_grad()
def evaluate(model: BitNetLM, data: np.ndarray, ctx: int, max_windows: int = 64) -> float:
    """Mean next-character cross entropy (nats) over non-overlapping windows of ctx (evenly spread)."""
    n = (len(data) - 1) // ctx
    picks = np.linspace(0, n - 1, min(n, max_windows)).astype(np.int64)
    x = np.stack([data[p * ctx:p * ctx + ctx + 1] for p in picks]).astype(np.int64)
    xs, ys = torch.from_numpy(x[:, :-1]), torch.from_numpy(x[:, 1:])
    total = 0.0
    for i in range(0, len(xs), 16):
        logits = model(xs[i:i + 16])
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ys[i:i + 16].reshape(-1),
                                       reduction="sum"))
    return total / ys.numel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "test", "fixtures", "lm", "charlm"))
    ap.add_argument("--steps", type=int, default=650)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=352)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--eval-every", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    print("command:", " ".join([os.path.basename(sys.executable)] + sys.argv), flush=True)
    print(f"start: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, torch {torch.__version__}, 1 thread")

    text = read_text()
    data = encode(text)
    split = int(len(data) * 0.95)
    train, val = data[:split], data[split:]
    unk = float((data == 0).mean())
    print(f"text: {JARGON}, {len(text)} characters after cleaning ({unk:.5%} <unk>), "
          f"train {len(train)}, val {len(val)} (the last 5%)")

    cfg = LMConfig(vocab_size=len(VOCAB), hidden_size=args.hidden, intermediate_size=args.ffn,
                   num_hidden_layers=args.layers, num_attention_heads=args.heads,
                   num_key_value_heads=args.kv_heads, max_position_embeddings=args.ctx, rms_norm_eps=1e-5,
                   rope_theta=10000.0, hidden_act="relu2", tie_word_embeddings=True,
                   tilelli_activations="int8")
    g = torch.Generator().manual_seed(args.seed)
    model = BitNetLM(cfg).init_weights(g, std=0.1, proj_std=0.02).set_mode("train", "int8")
    n_params = sum(p.numel() for p in model.parameters())
    n_proj = sum(p.numel() for n, p in model.named_parameters() if "proj" in n)
    print(f"model: {json.dumps({k: v for k, v in cfg.to_dict().items() if k not in ('architectures', 'model_type', 'torch_dtype')})}")
    print(f"parameters: {n_params} ({n_proj} ternary in projections, {n_params - n_proj} float)")

    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98))
    warm = max(1, args.steps // 20)

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        t = (step - warm) / max(1, args.steps - warm)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    it = batches(train, args.batch, args.ctx, g)
    t0 = time.time()
    running = None
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        x, y = next(it)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = float(loss) if running is None else 0.98 * running + 0.02 * float(loss)
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            model.eval()
            vl = evaluate(model, val, args.ctx)
            model.train()
            print(f"step {step + 1:5d}  lr {lr_at(step):.2e}  train loss (running) {running:.4f}  "
                  f"val loss {vl:.4f} nats/char ({vl / math.log(2):.3f} bits)  {time.time() - t0:.0f} s", flush=True)
    train_s = time.time() - t0

    # the checkpoint is float16: write it, then go on with the model read back from it
    os.makedirs(args.out, exist_ok=True)
    model.save(args.out, dtype="F16")
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as fh:
        json.dump(tokenizer_json(), fh, ensure_ascii=False)
        fh.write("\n")
    size = os.path.getsize(os.path.join(args.out, "model.safetensors"))
    print(f"wrote {args.out}: config.json, model.safetensors ({size} bytes float16), tokenizer.json")
    model = load_lm(args.out).eval()
    tl = evaluate(model, train, args.ctx)
    vl = evaluate(model, val, args.ctx)
    print(f"final (train mode, int8 STE forward): train loss {tl:.4f}, val loss {vl:.4f} nats/char; "
          f"{train_s:.0f} s for {args.steps} steps of {args.batch}x{args.ctx} characters")
    model.set_mode("exact", "int8")
    vx = evaluate(model, val, args.ctx, max_windows=16)
    model.set_mode("train", "int8")
    vt = evaluate(model, val, args.ctx, max_windows=16)
    print(f"runtime numbers (exact mode, int8): val loss {vx:.4f} on 16 windows (train mode on the same: {vt:.4f})")

    model.set_mode("exact", "int8")
    ids = {t: i for i, t in enumerate(VOCAB)}
    for prompt in ("hacker n. ", "The ", "kludge"):
        p = [ids[ch] for ch in prompt]
        greedy = decode(model.generate(p, 200))
        sg = torch.Generator().manual_seed(7)
        sampled = decode(model.generate(p, 200, temperature=0.8, top_k=20, generator=sg))
        print(f"--- greedy from {prompt!r}:\n{prompt}{greedy}")
        print(f"--- temperature 0.8, top-k 20, seed 7, from {prompt!r}:\n{prompt}{sampled}")
    print(f"end: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")


if __name__ == "__main__":
    main()

"""quant_torch.py — the PyTorch baseline for bench/quant.mjs: the quantizers in PyTorch, one thread.

Times, on a rows x cols float32 tensor, the project's Python package (python/tilelli/quant.py: the
reference semantics written over PyTorch, checked bit for bit against the reference module by
python/tests/test_reference.py):
  per-tensor  quant.ternary_signs(w);
  per-row     quant.absmean_scale_per_row(w), then round(w / alpha).clamp_(-1, 1).to(int8) (what
              quant.ternary_signs_per_row does, keeping the scales it computed for the comparison).
Prints one JSON line per mode, like build/bench_quant_native.

The input is the raw little-endian float32 file given with --input (quant.mjs passes the exact tensor
the other implementations quantize), or, standalone, uniform [-1, 1) from torch's generator.
With --dump DIR the results are written there (per-tensor.trits, per-tensor.alpha, per-row.trits,
per-row.alphas) so the caller can compare them with its own.

    /usr/bin/python3 bench/quant_torch.py --rows 4096 --cols 4096 --reps 10
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

PYTHON_PACKAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'python')


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--rows', type=int, default=4096)
    p.add_argument('--cols', type=int, default=4096)
    p.add_argument('--reps', type=int, default=10, help='timed repetitions (after the warm-up)')
    p.add_argument('--warmup', type=int, default=2, help='untimed repetitions first')
    p.add_argument('--input', help='raw float32 file of rows*cols elements (default: random uniform)')
    p.add_argument('--dump', help='directory to write the results into')
    return p.parse_args()


def load_input(args: argparse.Namespace) -> torch.Tensor:
    n = args.rows * args.cols
    if args.input is None:
        g = torch.Generator().manual_seed(12345)
        return torch.rand(args.rows, args.cols, generator=g) * 2 - 1
    with open(args.input, 'rb') as f:
        data = bytearray(f.read())
    if len(data) != n * 4:
        sys.exit(f'quant_torch.py: {args.input} holds {len(data)} bytes, expected {n * 4} ({args.rows} x {args.cols} float32)')
    if sys.byteorder != 'little':
        sys.exit('quant_torch.py: --input is little-endian float32; this machine is big-endian')
    return torch.frombuffer(data, dtype=torch.float32).reshape(args.rows, args.cols)


def time_it(fn, w: torch.Tensor, warmup: int, reps: int):
    """Run fn(w) warmup times untimed, then reps times timed; return (times in ms, last result)."""
    for _ in range(warmup):
        out = fn(w)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn(w)
        times.append((time.perf_counter() - t0) * 1e3)
    return times, out


def main() -> None:
    args = parse_args()
    sys.path.insert(0, os.path.abspath(PYTHON_PACKAGE))
    from tilelli import quant  # the project's package (python/tilelli), never copied

    torch.set_num_threads(1)
    w = load_input(args)

    def per_tensor(x: torch.Tensor):
        # ternary_signs computes alpha internally and returns only the trits; the alpha is
        # recomputed once, outside the timing, for the comparison with the other implementations.
        return quant.ternary_signs(x)

    def per_row(x: torch.Tensor):
        with torch.no_grad():
            alpha = quant.absmean_scale_per_row(x)
            return torch.round(x / alpha).clamp_(-1.0, 1.0).to(torch.int8), alpha

    modes = [
        ('per-tensor', per_tensor, 'tilelli.quant.ternary_signs(w)', None),
        ('per-row', per_row, 'tilelli.quant.absmean_scale_per_row(w); torch.round(w / alpha).clamp_(-1, 1).to(torch.int8)',
         'ternary_signs_per_row, keeping the scales it computes'),
    ]
    for mode, fn, what, note in modes:
        times, out = time_it(fn, w, args.warmup, args.reps)
        line = {
            'impl': 'pytorch', 'mode': mode, 'rows': args.rows, 'cols': args.cols, 'reps': args.reps,
            'best_ms': round(min(times), 4), 'median_ms': round(statistics.median(times), 4),
            'mean_ms': round(statistics.fmean(times), 4),
            'threads': torch.get_num_threads(), 'torch': torch.__version__, 'timed': what,
        }
        if note:
            line['note'] = note
        print(json.dumps(line), flush=True)
        if args.dump:
            if mode == 'per-tensor':
                trits, alpha = out, quant.absmean_scale(w).reshape(1)
            else:
                trits, alpha = out[0], out[1].reshape(-1)
            with open(os.path.join(args.dump, f'{mode}.trits'), 'wb') as f:
                f.write(trits.contiguous().numpy().tobytes())
            scale_file = 'per-tensor.alpha' if mode == 'per-tensor' else 'per-row.alphas'
            with open(os.path.join(args.dump, scale_file), 'wb') as f:
                f.write(alpha.contiguous().numpy().tobytes())


if __name__ == '__main__':
    main()

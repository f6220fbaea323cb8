"""The issue's "done when": in a venv made with --system-site-packages, `pip install ./python` works
offline, a 10-line script builds an nn.Sequential of nn.Linear / nn.ReLU, loads float weights,
exports with tilelli.export, and `npx tilelli run` on the result gives PyTorch's predictions."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import torch

from conftest import REPO, mnist_expected, mnist_state_dict

SCRIPT = '''\
import torch
from torch import nn
import tilelli

model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
model.load_state_dict(torch.load("mlp.pt"))
tilelli.export(model, "mlp.tlm")             # plain nn.Linear: ternarized per tensor, i2
print(tilelli.__file__)
'''


def test_pip_install_then_a_ten_line_script_then_npx_tilelli_run(tmp_path, digits_json):
    assert len(SCRIPT.strip().splitlines()) <= 10
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")   # offline: nothing may come from an index
    p = subprocess.run([py, "-m", "pip", "install", "-q", os.path.join(REPO, "python")], capture_output=True,
                       text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr

    work = tmp_path / "work"
    work.mkdir()
    sd = mnist_state_dict()
    torch.save({f"{i}.{p}": sd[f"fc{k}.{p}"] for k, i in ((1, 0), (2, 2), (3, 4)) for p in ("weight", "bias")},
               work / "mlp.pt")
    (work / "train_and_export.py").write_text(SCRIPT)
    p = subprocess.run([py, "train_and_export.py"], cwd=work, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().startswith(str(venv)), f"imported {p.stdout.strip()}, not the installed package"

    p = subprocess.run(["npx", "--no-install", "tilelli", "run", str(work / "mlp.tlm"), digits_json, "--json"],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    exp, _ = mnist_expected()
    # PyTorch's predictions: the fixture's model (trained with the per-tensor STE) in eval mode
    assert got["predictions"] == exp["predictions"].tolist()
    logits = np.array(got["outputs"], dtype=np.float32)
    assert np.all(np.abs(logits - exp["logits"]) <= 1e-5 * np.abs(exp["logits"]).max(axis=1, keepdims=True))

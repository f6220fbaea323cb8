"""Hugging Face packed BitNet checkpoints (as microsoft/bitnet-b1.58-2B-4T ships), written and read
in PyTorch: the reference for tilelli's C reader (src/lm.c, tl_lm_load).

The layout, learned from transformers' ``integrations/bitnet.py`` (``pack_weights`` /
``unpack_weights``, ``BitLinear``, ``AutoBitLinear``) and written anew here:

- a projection [out, in] of trits is stored as ``<name>.weight`` uint8 [out / 4, in]: with
  P = out / 4, unpacked row ``k * P + p`` (k < 4) is bits ``2k .. 2k+1`` of packed row p, and the
  trit is the 2-bit code minus 1 (code 3 is no trit);
- ``<name>.weight_scale``, one value: ``BitLinear`` (``quantization_config.linear_class``
  "bitlinear", the default) divides its output by it, so it is 1 / alpha; ``AutoBitLinear``
  ("autobitlinear") multiplies its output by it, so it is alpha;
- ``quantization_config``: ``{"quant_method": "bitnet", "linear_class": ..., "quantization_mode":
  "offline"}``; embeddings and norms are float tensors (bf16 in 2B4T).

    write_hf_packed(model, dir, linear_class)   # config.json + model.safetensors
    read_hf_packed(dir) -> (config dict, {projection name: (trits, alpha)}, {name: float tensor})
    load_hf_packed(dir) -> BitNetLM whose projections use exactly those trits and alphas
"""
from __future__ import annotations

import json
import os
import struct
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from .lm import BitNetLM, LMConfig, LMConfigError, runtime_ternary

VALUES_PER_BYTE = 4
LINEAR_CLASSES = ("bitlinear", "autobitlinear")


def pack_hf(trits: Tensor) -> Tensor:
    """trits [out, in] in {-1, 0, 1} -> uint8 [out / 4, in] (out a multiple of 4)."""
    out = trits.shape[0]
    if trits.dim() != 2 or out % VALUES_PER_BYTE:
        raise ValueError(f"pack_hf: trits must be [out, in] with out a multiple of 4, got {tuple(trits.shape)}")
    codes = (trits.to(torch.int64) + 1).to(torch.uint8)
    if int(codes.max()) > 2:
        raise ValueError("pack_hf: values must be -1, 0 or 1")
    P = out // VALUES_PER_BYTE
    packed = torch.zeros((P,) + tuple(trits.shape[1:]), dtype=torch.uint8)
    for k in range(VALUES_PER_BYTE):
        packed |= codes[k * P:(k + 1) * P] << (2 * k)
    return packed


def unpack_hf(packed: Tensor) -> Tensor:
    """uint8 [P, in] -> float32 trits [4P, in] (transformers' unpack_weights order)."""
    rows = []
    for k in range(VALUES_PER_BYTE):
        rows.append(((packed >> (2 * k)) & 3).to(torch.int64))
    codes = torch.cat(rows, dim=0)
    if int(codes.max()) > 2:
        raise LMConfigError("unpack_hf: a 2-bit code 3 is no trit")
    return (codes - 1).to(torch.float32)


def _bf16_bits(a: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits, round to nearest even (as torch's .to(torch.bfloat16))."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(torch.bfloat16).view(torch.int16).numpy()


def _write(path: str, tensors: list, metadata: Optional[dict] = None) -> None:
    """tensors: [(name, numpy array, dtype "F32" | "BF16" | "U8")]."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, off = [], 0
    for name, a, dt in tensors:
        if dt == "F32":
            b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        elif dt == "BF16":
            b = _bf16_bits(a).astype("<i2").tobytes()
        elif dt == "U8":
            b = np.ascontiguousarray(a, dtype=np.uint8).tobytes()
        else:
            raise ValueError(dt)
        header[name] = {"dtype": dt, "shape": [int(d) for d in a.shape], "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    js = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    js += b" " * ((-len(js)) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


def _read(path: str) -> dict:
    """{name: (dtype, shape, raw bytes)} of F32, BF16, F16 and U8 tensors."""
    with open(path, "rb") as fh:
        buf = fh.read()
    n = int.from_bytes(buf[:8], "little")
    hdr = json.loads(buf[8:8 + n])
    hdr.pop("__metadata__", None)
    data = buf[8 + n:]
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in hdr.items()}


def _to_tensor(dt: str, shape: list, raw: bytes) -> Tensor:
    if dt == "F32":
        a = np.frombuffer(raw, dtype="<f4")
    elif dt == "F16":
        a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif dt == "BF16":
        a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    elif dt == "U8":
        return torch.from_numpy(np.frombuffer(raw, dtype=np.uint8).reshape(shape).copy())
    else:
        raise LMConfigError(f"dtype {dt} is not read here")
    return torch.from_numpy(a.reshape(shape).copy())


def is_projection(name: str) -> bool:
    return name.endswith("_proj.weight") and name.startswith("model.layers.")


def write_hf_packed(model: BitNetLM, path_dir: str, linear_class: str = "bitlinear", float_dtype: str = "F32",
                    scale_dtype: str = "F32") -> None:
    """The model's projections as the runtime quantizes them (runtime_ternary: trits, alpha),
    packed; the other tensors in float_dtype."""
    if linear_class not in LINEAR_CLASSES:
        raise ValueError(f"linear_class must be one of {LINEAR_CLASSES}")
    os.makedirs(path_dir, exist_ok=True)
    cfg = model.config.to_dict()
    cfg.pop("tilelli_quantizer", None)
    cfg["quantization_config"] = {"quant_method": "bitnet", "linear_class": linear_class, "quantization_mode": "offline"}
    with open(os.path.join(path_dir, "config.json"), "w", encoding="utf-8") as fh:
        json.dump(cfg, fh, indent=2)
        fh.write("\n")
    out = []
    for name, p in model.state_dict().items():
        if is_projection(name):
            trits, alpha = runtime_ternary(p)
            scale = alpha if linear_class == "autobitlinear" else 1.0 / alpha
            out.append((name, pack_hf(trits).numpy(), "U8"))
            out.append((name + "_scale", np.array([float(scale)], dtype=np.float32), scale_dtype))
        else:
            out.append((name, p.detach().float().numpy(), float_dtype))
    _write(os.path.join(path_dir, "model.safetensors"), out, {"format": "pt"})


def read_hf_packed(path_dir: str) -> tuple:
    """(config dict, {projection name: (trits float32 [out, in], alpha float32 0-d)}, {other name:
    float32 tensor}). alpha follows the config's linear_class: weight_scale or 1 / weight_scale."""
    with open(os.path.join(path_dir, "config.json"), encoding="utf-8") as fh:
        cfg = json.load(fh)
    q = cfg.get("quantization_config") or {}
    if q.get("quant_method") != "bitnet":
        raise LMConfigError("quantization_config.quant_method is not bitnet")
    cls = q.get("linear_class", "bitlinear")
    raw = _read(os.path.join(path_dir, "model.safetensors"))
    projs, floats = {}, {}
    for name, (dt, shape, b) in raw.items():
        if name.endswith("weight_scale"):
            continue
        t = _to_tensor(dt, shape, b)
        if dt == "U8":
            ws = _to_tensor(*raw[name + "_scale"]).reshape(()).to(torch.float32)
            alpha = ws if cls == "autobitlinear" else torch.tensor(1.0, dtype=torch.float32) / ws
            projs[name] = (unpack_hf(t), alpha)
        else:
            floats[name] = t
    return cfg, projs, floats


def load_hf_packed(path_dir: str) -> BitNetLM:
    """A BitNetLM whose projections use the file's trits and alphas exactly (in "exact" mode)."""
    cfg, projs, floats = read_hf_packed(path_dir)
    d = {k: v for k, v in cfg.items() if k != "quantization_config"}
    model = BitNetLM(LMConfig.from_dict(d))
    state = dict(floats)
    for name, (trits, alpha) in projs.items():
        state[name] = trits * alpha  # a latent stand-in; the fixed ternary below is what runs
    model.load_state_dict(state)
    mods = dict(model.named_modules())
    for name, (trits, alpha) in projs.items():
        mods[name[:-len(".weight")]].fixed = (trits, alpha)
    return model

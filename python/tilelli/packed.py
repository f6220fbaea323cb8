"""``tilelli.load``: a packed model file as a PyTorch module that computes what tilelli computes.

Each layer follows the runtime (src/model.c, docs/FORMATS.md):
    linear, float activations    y = fl(acc * scale[r]) + bias[r], acc = trits . x
    linear, int8 activations     x_q, s = the per-token quantizer; y = fl(fl(fl(acc) * scale[r]) / s) + bias[r]
                                 with acc = trits . x_q exact (bit for bit the runtime's output)
    bitlinear                    RMSNorm first (mean of squares in double), then as int8
                                 (int8 and bitlinear layers give the runtime's bits; only the order of
                                 RMSNorm's double sum could differ, in the last bit of a double)
    relu, gelu (erf), silu, rmsnorm, softmax, binarize (threshold, or k winners, ties to the lower index)
The float product's summation order is torch's, so float outputs agree with the runtime to float32
rounding, not bitwise (the runtime's own batch sizes differ in the last bits too).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import tlm
from .modules import quantize_activations


class PackedLinear(nn.Module):
    """A packed ``linear`` or ``bitlinear`` layer: int8 trits, float32 per-row scales, optional bias."""

    def __init__(self, L: dict) -> None:
        super().__init__()
        self.kind = L["type"]
        self.in_features, self.out_features = L["in"], L["out"]
        self.format = L["format"]
        self.activations = "int8" if self.kind == "bitlinear" else L.get("activations", "float")
        self.quantizer = L.get("quantizer")
        self.name = L.get("name")
        self.register_buffer("trits", torch.from_numpy(L["trits"].copy()))
        self.register_buffer("scales", torch.from_numpy(L["scales"].copy()))
        self.register_buffer("bias", None if L["bias"] is None else torch.from_numpy(L["bias"].copy()))
        nw = L.get("norm_weight")
        self.register_buffer("norm_weight", None if nw is None else torch.from_numpy(nw.copy()))
        self.eps = L.get("eps")
        self.binary_input = False  # after a binarize layer: the runtime's popcount kernel, whatever the precision

    def forward(self, x: Tensor) -> Tensor:
        x = x.float()
        if self.kind == "bitlinear":
            x = runtime_rms_norm(x, self.eps, self.norm_weight)
        if self.activations == "int8" and not self.binary_input:
            q, s = quantize_activations(x)
            # |acc| <= 128 * in < 2^53: exact in double, then one rounding to float32 as (float)acc
            acc = (q.double() @ self.trits.double().t()).float()
            y = acc * self.scales / s
        else:
            y = F.linear(x, self.trits.float()) * self.scales
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return (f"{self.kind}, in={self.in_features}, out={self.out_features}, format={self.format!r}, "
                f"activations={self.activations!r}, quantizer={self.quantizer!r}, name={self.name!r}")


def runtime_rms_norm(x: Tensor, eps: float, weight: Tensor | None) -> Tensor:
    """The runtime's RMSNorm: inv = 1 / sqrtf(fl(sum(x^2) / n in double) + eps); x * inv * weight."""
    ms = (x.double() ** 2).mean(dim=-1, keepdim=True).float()
    inv = 1.0 / torch.sqrt(ms + torch.tensor(eps, dtype=torch.float32))
    y = x * inv
    return y if weight is None else y * weight


class PackedRMSNorm(nn.Module):
    def __init__(self, L: dict) -> None:
        super().__init__()
        self.eps, self.name = L["eps"], L.get("name")
        w = L.get("weight")
        self.register_buffer("weight", None if w is None else torch.from_numpy(w.copy()))

    def forward(self, x: Tensor) -> Tensor:
        return runtime_rms_norm(x.float(), self.eps, self.weight)


class Binarize(nn.Module):
    """1 where x > threshold, else 0; or 1 for the k largest values of each vector (ties: the lower index)."""

    def __init__(self, threshold: float | None = None, k: int | None = None) -> None:
        super().__init__()
        self.threshold, self.k = threshold, k

    def forward(self, x: Tensor) -> Tensor:
        if self.k is None:
            return (x > self.threshold).float()
        # a stable sort keeps the lower index first among equal values
        order = torch.sort(x, dim=-1, descending=True, stable=True).indices[..., : self.k]
        return torch.zeros_like(x).scatter_(-1, order, 1.0)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}" if self.k is None else f"k={self.k}"


class PackedModel(nn.Sequential):
    """The layers of a packed model file, in order; ``predict`` gives the argmax per vector."""

    def __init__(self, model: tlm.Tlm) -> None:
        mods = []
        for L in model.layers:
            t = L["type"]
            if t in ("linear", "bitlinear"):
                mods.append(PackedLinear(L))
            elif t == "relu":
                mods.append(nn.ReLU())
            elif t == "gelu":
                mods.append(nn.GELU())
            elif t == "silu":
                mods.append(nn.SiLU())
            elif t == "softmax":
                mods.append(nn.Softmax(dim=-1))
            elif t == "rmsnorm":
                mods.append(PackedRMSNorm(L))
            elif t == "binarize":
                mods.append(Binarize(L.get("threshold"), L.get("k")))
            else:  # the reader refuses unknown types; this is a guard for a new one added there only
                raise tlm.TlmError(f"load: layer type {t!r} has no module")
            if isinstance(mods[-1], PackedLinear) and len(mods) > 1 and isinstance(mods[-2], Binarize):
                mods[-1].binary_input = True
        super().__init__(*mods)
        self.input_size, self.output_size = model.input, model.output
        self.version, self.metadata = model.version, model.metadata
        self.layer_info = tlm.describe(model)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"the model takes vectors of {self.input_size} values, got shape {tuple(x.shape)}")
        return super().forward(x)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        return self(x).argmax(dim=-1)


def load(path) -> PackedModel:
    """Read a packed model file (path or bytes) into a module that computes what tilelli computes."""
    return PackedModel(tlm.read(path)).eval()


def inspect(path) -> list:
    """The layer list of a packed model file: [{type, in, out, format?, quantizer?, activations?, name?, bias?}]."""
    return tlm.describe(tlm.read(path))

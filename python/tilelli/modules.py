"""Layers to train with: TernaryLinear (ternary weights, float activations) and BitLinear (BitNet
b1.58: RMSNorm, per-token int8 activations, ternary weights), each exported by ``tilelli.export`` as
the packed model file's ``linear`` and ``bitlinear`` layers (docs/FORMATS.md)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import quant

QUANTIZERS = ("per_tensor", "per_row", "lsq")

ACT_EPS = 1e-5
"""The floor of the per-token activation scale's divisor: s = 127 / max(max |x|, ACT_EPS)."""


def quantize_activations(x: Tensor) -> tuple[Tensor, Tensor]:
    """The BitNet b1.58 per-token absmax quantizer over the last axis, all in float32:

        s   = 127 / max(max_c |x[c]|, 1e-5)
        x_q = clamp(round_half_even(x * s), -128, 127)

    Returns (x_q as float32 integers, s with a trailing axis of 1). The same rule as the runtime's
    ``tl_quantize_activations_i8``."""
    x = x.float()
    m = x.abs().amax(dim=-1, keepdim=True).clamp(min=ACT_EPS)
    # one float32 division: torch computes `127.0 / m` as m.reciprocal() * 127, which rounds twice
    s = torch.full_like(m, 127.0) / m
    return torch.round(x * s).clamp_(-128.0, 127.0), s


def fake_quantize_activations(x: Tensor) -> Tensor:
    """x_q / s in the forward, identity gradient to x (straight-through)."""
    q, s = quantize_activations(x)
    return x + (q / s - x).detach()


def rms_norm(x: Tensor, eps: float, weight: Tensor | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the last axis, times weight when given (the runtime's rmsnorm)."""
    y = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)
    return y if weight is None else y * weight


class RMSNorm(nn.Module):
    """RMSNorm over the last axis, optionally with a learned weight; exported as ``rmsnorm``."""

    def __init__(self, dim: int, eps: float = 1e-5, weight: bool = True) -> None:
        super().__init__()
        if not 0 < eps < 1:
            raise ValueError(f"RMSNorm: eps must be in (0, 1), got {eps}")
        self.dim, self.eps = int(dim), float(eps)
        self.weight = nn.Parameter(torch.ones(dim)) if weight else None

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.eps, self.weight)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}, weight={self.weight is not None}"


class TernaryLinear(nn.Linear):
    """nn.Linear with ternary weights in the forward and float32 shadow weights trained through
    the straight-through estimator; the bias stays float32.

    quantizer: ``per_tensor`` (``quant.ternarize``), ``per_row`` (``quant.ternarize_per_row``) or
    ``lsq`` (``quant.ternarize_lsq`` with a ``LearnableScale`` initialised to the AbsMean of the
    initial weight, or to ``lsq_init`` when given)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 quantizer: str = "per_tensor", lsq_init: float | None = None,
                 device=None, dtype=None) -> None:
        if quantizer not in QUANTIZERS:
            raise ValueError(f"TernaryLinear: quantizer must be one of {', '.join(QUANTIZERS)}, got {quantizer!r}")
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.quantizer = quantizer
        if quantizer == "lsq":
            with torch.no_grad():
                init = float(quant.absmean_scale(self.weight)) if lsq_init is None else lsq_init
            self.scale = quant.LearnableScale(init)

    def quantized_weight(self) -> Tensor:
        """The forward weight (straight-through to self.weight)."""
        if self.quantizer == "per_tensor":
            return quant.ternarize(self.weight)
        if self.quantizer == "per_row":
            return quant.ternarize_per_row(self.weight)
        return quant.ternarize_lsq(self.weight, self.scale.value())

    @torch.no_grad()
    def trits_and_scales(self) -> tuple[Tensor, Tensor]:
        """(int8 trits [out, in], float32 scales [out]): what the packed file stores."""
        return ternary_parts(self.weight, self.quantizer, self.scale.value() if self.quantizer == "lsq" else None)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", quantizer={self.quantizer!r}"


class BitLinear(TernaryLinear):
    """BitNet b1.58 BitLinear, exactly the runtime's ``bitlinear`` layer:

        x' = RMSNorm(x) (x / sqrt(mean(x^2) + eps), times norm weight when ``norm_weight=True``)
        x_q, s = the per-token int8 quantizer of x'
        y = (trits . x_q) * scale / s + bias

    In training the activations and the weights both go straight through (x_q / s forward,
    identity backward)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 quantizer: str = "per_tensor", eps: float = 1e-5, norm_weight: bool = False,
                 lsq_init: float | None = None, device=None, dtype=None) -> None:
        super().__init__(in_features, out_features, bias=bias, quantizer=quantizer, lsq_init=lsq_init,
                         device=device, dtype=dtype)
        if not 0 < eps < 1:
            raise ValueError(f"BitLinear: eps must be in (0, 1), got {eps}")
        self.eps = float(eps)
        self.norm_weight = nn.Parameter(torch.ones(in_features)) if norm_weight else None

    def forward(self, x: Tensor) -> Tensor:
        x = fake_quantize_activations(rms_norm(x, self.eps, self.norm_weight))
        return F.linear(x, self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", eps={self.eps}, norm_weight={self.norm_weight is not None}"


@torch.no_grad()
def ternary_parts(w: Tensor, quantizer: str, lsq_alpha: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(int8 trits, float32 per-row scales) of a float weight [out, in] under a quantizer."""
    w = w.detach().float()
    rows = w.shape[0]
    if quantizer == "per_tensor":
        return quant.ternary_signs(w), quant.absmean_scale(w).reshape(1).expand(rows).contiguous()
    if quantizer == "per_row":
        return quant.ternary_signs_per_row(w), quant.absmean_scale_per_row(w).reshape(rows).contiguous()
    if quantizer == "lsq":
        if lsq_alpha is None:
            raise ValueError("the lsq quantizer needs a learned scale (TernaryLinear(quantizer='lsq') has one)")
        a = lsq_alpha.detach().float().reshape(())
        return quant.lsq_signs(w, a), a.reshape(1).expand(rows).contiguous()
    raise ValueError(f"quantizer must be one of {', '.join(QUANTIZERS)}, got {quantizer!r}")

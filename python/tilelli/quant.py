"""Ternary quantizers: BitNet b1.58 AbsMean scales, trits, the straight-through estimator.

These are the semantics tilelli's C core and JS API implement (README.md, "Exactly the
reference's numbers"), written over PyTorch so that a model trained here and the packed model run
by tilelli see the same trits and scales:

    alpha = max(mean(|w|), EPS)                  float32, a 0-d tensor (per row: one per first-axis row)
    trit  = clamp(round_half_even(w / alpha), -1, 1)   a float32 division, not w * (1 / alpha)

The scale is torch's own reduction (``w.abs().mean()``), so within one torch build every result is
bit for bit what PyTorch computes; tilelli's C core sums in double and agrees with it except, rarely,
in the last bit of a scale (then a trit can differ only where |w / alpha| is within an ulp of 0.5 or
1.5).

The STE forms keep the classic ``w + (w_q - w).detach()`` expression on purpose: its forward value is
w_q up to a rounding of the subtraction (for |w / alpha| > 2 it can be an ulp or two away), and
training fixtures are made with exactly that value.

Empty tensors raise ``ValueError`` instead of returning NaN. Non-finite values are not scanned for
here (a scan in every training step would cost a pass over the weights); ``tilelli.export`` rejects
them with the layer's name.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

EPS = 1e-5
"""The lower clamp of every scale (compared and stored as the float32 value 9.99999975e-06)."""

__all__ = [
    "EPS", "absmean_scale", "ternarize", "ternary_values", "ternary_signs",
    "absmean_scale_per_row", "ternarize_per_row", "ternary_values_per_row", "ternary_signs_per_row",
    "LearnableScale", "ternarize_lsq", "lsq_signs", "deadzone_stats",
]


def _nonempty(w: Tensor, fn: str) -> None:
    if w.numel() == 0:
        raise ValueError(f"{fn}: the tensor is empty (shape {tuple(w.shape)}); a scale needs at least one value")


def _trits(w: Tensor, alpha: Tensor) -> Tensor:
    """clamp(round(w / alpha), -1, 1) as floats: the one rounding rule of every quantizer here."""
    return torch.round(w / alpha).clamp_(-1.0, 1.0)


# ------------------------------------------------------------------------------------------------
# per tensor
# ------------------------------------------------------------------------------------------------
def absmean_scale(w: Tensor) -> Tensor:
    """alpha = max(mean(|w|), EPS) as a 0-d tensor of w's dtype (broadcasts against w)."""
    _nonempty(w, "absmean_scale")
    return w.abs().mean().clamp(min=EPS)


def _ste(w: Tensor, alpha: Tensor) -> Tensor:
    """Forward: trits * alpha; backward: identity to w (straight-through); alpha gets no gradient."""
    return w + (_trits(w, alpha) * alpha - w).detach()


def ternarize(w: Tensor) -> Tensor:
    """Forward: trits * alpha; backward: identity to w (straight-through); alpha gets no gradient."""
    return _ste(w, absmean_scale(w))


@torch.no_grad()
def ternary_values(w: Tensor) -> Tensor:
    """The ternarized tensor trits * alpha, without the STE (a -0.0 stays where w is negative)."""
    return _trits(w, absmean_scale(w)) * absmean_scale(w)


@torch.no_grad()
def ternary_signs(w: Tensor) -> Tensor:
    """The trits {-1, 0, +1} as int8, without the scale (that is ``absmean_scale(w)``)."""
    return _trits(w, absmean_scale(w)).to(torch.int8)


# ------------------------------------------------------------------------------------------------
# per row (the first axis is the row axis)
# ------------------------------------------------------------------------------------------------
def absmean_scale_per_row(w: Tensor) -> Tensor:
    """One max(mean(|row|), EPS) per row, shaped (rows, 1, ..., 1) to broadcast against w.

    Raises ValueError for a tensor of rank < 2."""
    if w.dim() < 2:
        raise ValueError(f"absmean_scale_per_row: a per-row scale needs rank >= 2, got shape {tuple(w.shape)}")
    _nonempty(w, "absmean_scale_per_row")
    alpha = w.reshape(w.shape[0], -1).abs().mean(dim=1).clamp(min=EPS)
    return alpha.reshape((w.shape[0],) + (1,) * (w.dim() - 1))


def ternarize_per_row(w: Tensor) -> Tensor:
    """The per-row straight-through ternarization: each row with its own scale."""
    return _ste(w, absmean_scale_per_row(w))


@torch.no_grad()
def ternary_values_per_row(w: Tensor) -> Tensor:
    """trits * alpha_row, without the STE."""
    return _trits(w, absmean_scale_per_row(w)) * absmean_scale_per_row(w)


@torch.no_grad()
def ternary_signs_per_row(w: Tensor) -> Tensor:
    """The per-row trits as int8 (the scales are ``absmean_scale_per_row(w)``)."""
    return _trits(w, absmean_scale_per_row(w)).to(torch.int8)


# ------------------------------------------------------------------------------------------------
# a learned scale
# ------------------------------------------------------------------------------------------------
class LearnableScale(nn.Module):
    """One learnable float32 scale; ``value()`` is it clamped at EPS (the clamp passes no gradient below EPS)."""

    def __init__(self, initial: float = 1.0) -> None:
        super().__init__()
        initial = float(initial)
        if not initial > 0:  # also refuses NaN
            raise ValueError(f"LearnableScale: the initial scale must be > 0, got {initial}")
        self.alpha = nn.Parameter(torch.tensor(initial))

    def value(self) -> Tensor:
        return self.alpha.clamp(min=EPS)

    def extra_repr(self) -> str:
        return f"alpha={float(self.alpha.detach()):.6g}"


def ternarize_lsq(w: Tensor, alpha: Tensor) -> Tensor:
    """Ternarize with a given (learned) scale: forward q * alpha with q = clamp(round(w / alpha), -1, 1);
    d/dw = 1 (straight-through), d/dalpha = q. A zero comes out as +0.0."""
    q = _trits(w, alpha).detach()
    return q * alpha + (w - w.detach())


@torch.no_grad()
def lsq_signs(w: Tensor, alpha: Tensor) -> Tensor:
    """The trits of ``ternarize_lsq(w, alpha)`` as int8."""
    return _trits(w, alpha).to(torch.int8)


# ------------------------------------------------------------------------------------------------
# diagnostics
# ------------------------------------------------------------------------------------------------
@torch.no_grad()
def deadzone_stats(w: Tensor, band: float = 0.1) -> dict:
    """How the per-tensor trits fall, and how many weights sit near the rounding edge |w / alpha| = 0.5.

    Keys: alpha; frac_neg, frac_zero, frac_pos (the trits, summing to 1); frac_boundary, the
    fraction with ||w / alpha| - 0.5| < band (strict); frac_zero_inner, the fraction with
    |w / alpha| < 0.5 - band whose quotient is not exactly zero (sign(w / alpha) != 0). All plain
    Python floats; each fraction is count / numel."""
    alpha = absmean_scale(w)
    v = w / alpha
    r = v.abs()
    t = torch.round(v).clamp_(-1.0, 1.0)
    n = float(w.numel())

    def frac(mask: Tensor) -> float:
        return float(mask.sum().item()) / n

    return {
        "alpha": float(alpha.item()),
        "frac_neg": frac(t == -1),
        "frac_zero": frac(t == 0),
        "frac_pos": frac(t == 1),
        "frac_boundary": frac((r - 0.5).abs() < band),
        "frac_zero_inner": frac((torch.sign(v) != 0) & (r < 0.5 - band)),
    }

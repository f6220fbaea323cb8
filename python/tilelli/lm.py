"""A BitNet b1.58 language model in PyTorch: the architecture tilelli's runtime runs (src/lm.c).

BitNet b1.58 2B4T's layout (Hugging Face ``BitNetForCausalLM``; with ``hidden_act="silu"`` the
Llama one): token embedding, per layer RMSNorm -> ternary q/k/v projections -> RoPE -> causal
grouped-query attention -> ``attn_sub_norm`` -> o_proj -> residual, RMSNorm -> gate/up -> relu2 or
silu gate -> ``ffn_sub_norm`` -> down_proj -> residual; final RMSNorm and a float head (tied to the
embedding or not). Every projection is a BitLinear: per-tensor AbsMean ternary weights and per-token
int8 activations (or float activations with ``tilelli_activations="float"``).

Two ways to compute it, switched with ``BitNetLM.set_mode``:

- ``"train"``: float32 autograd; weights go straight through ``quant.ternarize``, activations through
  ``modules.fake_quantize_activations`` (int8) or not (float);
- ``"exact"``: what the runtime computes, operation by operation (the tensor names' spec is
  the project's notes on the language model, mirrored in docs): the runtime's RMSNorm, the AbsMean
  scale summed in double as tl_absmean_scale does, the int8 product exact and scaled as
  ``fl(fl(acc * alpha) / s)``, float activations as ``fl(trits . x) * alpha``, RoPE tables from
  double ``pow``/``cos``/``sin`` rounded to float32. Order-dependent sums (dot products, softmax
  denominators, the weighted sum of values) are taken in double and rounded once, so that a prompt
  run at once and the same tokens fed one by one through the KV cache give the same bits, and any
  correct float32 implementation sits within a few ulps.

Files: ``save(dir)`` writes ``config.json`` (Hugging Face keys) and ``model.safetensors`` (latent
weights under Hugging Face names, float32, or float16 with ``dtype="F16"``); ``load(dir)`` reads them
back (F32, F16 or BF16 tensors, widened to float32).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import quant
from .modules import fake_quantize_activations, quantize_activations, rms_norm
from .packed import runtime_rms_norm

__all__ = ["LMConfig", "LMConfigError", "BitNetLM", "KVCache", "rope_tables", "load_lm",
           "runtime_absmean", "boundary_distance", "write_safetensors", "read_safetensors"]

ACTIVATIONS = ("int8", "float")
HIDDEN_ACTS = ("relu2", "silu")
QUANTIZERS = ("per_tensor",)


class LMConfigError(ValueError):
    """A config.json (or a checkpoint) that does not describe a model this module can build."""


# ------------------------------------------------------------------------------------------------
# config
# ------------------------------------------------------------------------------------------------
_REQUIRED_INT = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                 "num_attention_heads", "num_key_value_heads", "max_position_embeddings")


@dataclass
class LMConfig:
    """The Hugging Face config.json keys the runtime reads (and tilelli's two optional additions)."""
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    hidden_act: str = "relu2"
    tie_word_embeddings: bool = True
    head_dim: Optional[int] = None
    bos_token_id: Optional[int] = None
    eos_token_id: Optional[int] = None
    tilelli_activations: str = "int8"
    tilelli_quantizer: str = "per_tensor"

    def __post_init__(self) -> None:
        self.validate()

    @property
    def head_size(self) -> int:
        """head_dim, or hidden_size / num_attention_heads when the config leaves it out."""
        return self.head_dim if self.head_dim is not None else self.hidden_size // self.num_attention_heads

    def validate(self, where: str = "config") -> None:
        def bad(key, why):
            raise LMConfigError(f"{where}: {key!r} {why} (got {getattr(self, key)!r})")

        for k in _REQUIRED_INT:
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                bad(k, "must be a positive integer")
        for k in ("rms_norm_eps", "rope_theta"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                bad(k, "must be a finite number > 0")
        if not self.rms_norm_eps < 1:
            bad("rms_norm_eps", "must be < 1")
        if self.hidden_act not in HIDDEN_ACTS:
            bad("hidden_act", f"must be one of {', '.join(HIDDEN_ACTS)}")
        if not isinstance(self.tie_word_embeddings, bool):
            bad("tie_word_embeddings", "must be true or false")
        if self.tilelli_activations not in ACTIVATIONS:
            bad("tilelli_activations", f"must be one of {', '.join(ACTIVATIONS)}")
        if self.tilelli_quantizer not in QUANTIZERS:
            bad("tilelli_quantizer", f"must be one of {', '.join(QUANTIZERS)}")
        if self.num_attention_heads % self.num_key_value_heads:
            bad("num_key_value_heads", f"must divide num_attention_heads ({self.num_attention_heads})")
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                bad("hidden_size", f"must be a multiple of num_attention_heads ({self.num_attention_heads}) "
                                   "when head_dim is not given")
        elif not isinstance(self.head_dim, int) or isinstance(self.head_dim, bool) or self.head_dim <= 0:
            bad("head_dim", "must be a positive integer")
        if self.head_size % 2:
            raise LMConfigError(f"{where}: the head size must be even for RoPE (got {self.head_size})")
        for k in ("bos_token_id", "eos_token_id"):
            v = getattr(self, k)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < self.vocab_size):
                bad(k, f"must be a token id in [0, {self.vocab_size})")

    # -- Hugging Face config.json -----------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "LMConfig":
        """From a parsed config.json. Keys the runtime does not read (architectures, torch_dtype, ...)
        are ignored; a missing required key or a wrong value raises LMConfigError naming it."""
        if not isinstance(d, dict):
            raise LMConfigError(f"{where}: expected a JSON object, got {type(d).__name__}")
        required = _REQUIRED_INT + ("rms_norm_eps", "rope_theta", "hidden_act", "tie_word_embeddings")
        missing = [k for k in required if k not in d]
        if missing:
            raise LMConfigError(f"{where}: missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        kw = {}
        for f in dataclasses.fields(cls):
            if f.name in d and d[f.name] is not None:
                kw[f.name] = d[f.name]
        cfg = cls.__new__(cls)
        for f in dataclasses.fields(cls):
            setattr(cfg, f.name, kw.get(f.name, f.default))
        cfg.validate(where)
        return cfg

    def to_dict(self, torch_dtype: str = "float32") -> dict:
        """config.json's keys; torch_dtype (informative) names the checkpoint's float type."""
        d = {"architectures": ["BitNetForCausalLM"], "model_type": "bitnet", "torch_dtype": torch_dtype}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is not None:
                d[f.name] = v
        return d

    @classmethod
    def read(cls, path: str) -> "LMConfig":
        with open(path, encoding="utf-8") as fh:
            try:
                d = json.load(fh)
            except json.JSONDecodeError as e:
                raise LMConfigError(f"{path}: not JSON ({e})") from None
        return cls.from_dict(d, where=path)

    def write(self, path: str, torch_dtype: str = "float32") -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(torch_dtype), fh, indent=2)
            fh.write("\n")


# ------------------------------------------------------------------------------------------------
# numbers shared with the runtime
# ------------------------------------------------------------------------------------------------
def runtime_absmean(w: Tensor) -> Tensor:
    """tl_absmean_scale: alpha = max(fl(sum |w| in double) / fl(n), 1e-5), a float32 0-d tensor.
    (``quant.absmean_scale`` is torch's float mean; the two differ at most in the last bit.)"""
    s = w.detach().double().abs().sum().float()
    alpha = s / torch.tensor(float(w.numel()), dtype=torch.float32)
    return alpha.clamp(min=quant.EPS)


def runtime_ternary(w: Tensor) -> tuple[Tensor, Tensor]:
    """(trits as float32 {-1, 0, 1}, alpha): the projection as the runtime quantizes it on load."""
    alpha = runtime_absmean(w)
    return torch.round(w.detach().float() / alpha).clamp_(-1.0, 1.0), alpha


_rope_cache: dict = {}


def rope_tables(n: int, head_dim: int, theta: float) -> tuple[Tensor, Tensor]:
    """(cos, sin) float32 [n, head_dim / 2] for positions 0..n-1: freq_j = theta^(-2j/head_dim),
    cos/sin(position * freq_j), all in double (the C library's pow/cos/sin), rounded to float32."""
    key = (head_dim, float(theta))
    have = _rope_cache.get(key)
    if have is None or have[0].shape[0] < n:
        half = head_dim // 2
        freqs = [math.pow(theta, -2.0 * j / head_dim) for j in range(half)]
        cos = np.empty((n, half), dtype=np.float32)
        sin = np.empty((n, half), dtype=np.float32)
        for p in range(n):
            for j, f in enumerate(freqs):
                a = p * f
                cos[p, j], sin[p, j] = math.cos(a), math.sin(a)
        have = (torch.from_numpy(cos), torch.from_numpy(sin))
        _rope_cache[key] = have
    return have[0][:n], have[1][:n]


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x [..., T, heads, d], cos/sin [T, d/2]: the rotate_half convention,
    x'[j] = x[j] cos - x[j + d/2] sin, x'[j + d/2] = x[j + d/2] cos + x[j] sin (each product rounded)."""
    h = x.shape[-1] // 2
    c, s = cos[:, None, :], sin[:, None, :]
    a, b = x[..., :h], x[..., h:]
    return torch.cat((a * c - b * s, b * c + a * s), dim=-1)


# ------------------------------------------------------------------------------------------------
# layers
# ------------------------------------------------------------------------------------------------
class _Mode:
    """Shared switch read by every layer: exact (runtime numbers) or train, int8 or float activations;
    ``trace``, when a list, collects x * s (before rounding) of every int8 activation quantization,
    in the order the projections run (see ``BitNetLM.trace_quantization``)."""

    def __init__(self, activations: str) -> None:
        self.exact = False
        self.activations = activations
        self.trace: Optional[list] = None


class BitProjection(nn.Module):
    """A BitLinear projection without bias: weight [out, in] float32 latent, ternary per tensor."""

    def __init__(self, in_features: int, out_features: int, mode: _Mode) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self._mode = [mode]  # in a list: not a submodule
        # (trits, alpha) that the exact mode uses instead of quantizing the weight: a checkpoint
        # that stores them (tilelli.hf_bitnet.load_hf_packed)
        self.fixed: Optional[tuple] = None

    def forward(self, x: Tensor) -> Tensor:
        mode = self._mode[0]
        if not mode.exact:
            if mode.activations == "int8":
                if mode.trace is not None:
                    mode.trace.append((x.detach().float() * quantize_activations(x.detach())[1]).reshape(-1))
                x = fake_quantize_activations(x)
            return F.linear(x, quant.ternarize(self.weight))
        trits, alpha = self.fixed if self.fixed is not None else runtime_ternary(self.weight)
        if mode.activations == "int8":
            q, s = quantize_activations(x)
            if mode.trace is not None:
                mode.trace.append((x.float() * s).reshape(-1))
            # |acc| <= 128 * in: exact in double and in float32 for in < 2^17
            acc = (q.double() @ trits.double().t()).float()
            return acc * alpha / s
        return (x.double() @ trits.double().t()).float() * alpha

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}"


class Norm(nn.Module):
    """RMSNorm with a weight (Hugging Face ``*_layernorm``/``*_sub_norm``/``norm``)."""

    def __init__(self, dim: int, eps: float, mode: _Mode) -> None:
        super().__init__()
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(dim))
        self._mode = [mode]

    def forward(self, x: Tensor) -> Tensor:
        if self._mode[0].exact:
            return runtime_rms_norm(x, self.eps, self.weight.detach())
        return rms_norm(x, self.eps, self.weight)


class KVCache:
    """Per layer k (after RoPE) and v, float32 [batch, kv_heads, capacity, head_dim]; ``length``
    tokens are held. Positions continue from ``length``; ``reset()`` starts again at 0."""

    def __init__(self, config: LMConfig, batch: int = 1, capacity: Optional[int] = None) -> None:
        cap = config.max_position_embeddings if capacity is None else int(capacity)
        if not 0 < cap:
            raise ValueError(f"KVCache: capacity must be > 0, got {cap}")
        shape = (batch, config.num_key_value_heads, cap, config.head_size)
        self.k = [torch.zeros(shape) for _ in range(config.num_hidden_layers)]
        self.v = [torch.zeros(shape) for _ in range(config.num_hidden_layers)]
        self.capacity, self.batch, self.length = cap, batch, 0

    def reset(self) -> None:
        self.length = 0


class Attention(nn.Module):
    def __init__(self, c: LMConfig, mode: _Mode) -> None:
        super().__init__()
        hd, nh, nkv = c.head_size, c.num_attention_heads, c.num_key_value_heads
        self.q_proj = BitProjection(c.hidden_size, nh * hd, mode)
        self.k_proj = BitProjection(c.hidden_size, nkv * hd, mode)
        self.v_proj = BitProjection(c.hidden_size, nkv * hd, mode)
        self.attn_sub_norm = Norm(nh * hd, c.rms_norm_eps, mode)
        self.o_proj = BitProjection(nh * hd, c.hidden_size, mode)
        self.nh, self.nkv, self.hd, self.theta = nh, nkv, hd, c.rope_theta
        self._mode = [mode]

    def forward(self, x: Tensor, pos0: int, cache: Optional[KVCache], layer: int) -> Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd)
        cos, sin = rope_tables(pos0 + T, self.hd, self.theta)
        cos, sin = cos[pos0:], sin[pos0:]
        q = apply_rope(q, cos, sin).transpose(1, 2)         # [B, nh, T, hd]
        k = apply_rope(k, cos, sin).transpose(1, 2)         # [B, nkv, T, hd]
        v = v.transpose(1, 2)
        if cache is not None:
            cache.k[layer][:, :, pos0:pos0 + T] = k.detach()
            cache.v[layer][:, :, pos0:pos0 + T] = v.detach()
            k = cache.k[layer][:, :, :pos0 + T]
            v = cache.v[layer][:, :, :pos0 + T]
        group = self.nh // self.nkv
        if group > 1:  # head h reads kv head h // group
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
        S = k.shape[2]
        qpos = torch.arange(pos0, pos0 + T)[:, None]
        masked = torch.arange(S)[None, :] > qpos             # [T, S]: keys after the query
        scale = torch.tensor(math.sqrt(self.hd), dtype=torch.float32)
        if self._mode[0].exact:
            scores = (q.double() @ k.double().transpose(-1, -2)).float() / scale
            scores = scores.masked_fill(masked, float("-inf"))
            e = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
            p = e / e.double().sum(dim=-1, keepdim=True).float()
            out = (p.double() @ v.double()).float()
        else:
            scores = (q @ k.transpose(-1, -2)) / scale
            p = torch.softmax(scores.masked_fill(masked, float("-inf")), dim=-1)
            out = p @ v
        out = out.transpose(1, 2).reshape(B, T, self.nh * self.hd)
        return self.o_proj(self.attn_sub_norm(out))


class MLP(nn.Module):
    def __init__(self, c: LMConfig, mode: _Mode) -> None:
        super().__init__()
        self.gate_proj = BitProjection(c.hidden_size, c.intermediate_size, mode)
        self.up_proj = BitProjection(c.hidden_size, c.intermediate_size, mode)
        self.ffn_sub_norm = Norm(c.intermediate_size, c.rms_norm_eps, mode)
        self.down_proj = BitProjection(c.intermediate_size, c.hidden_size, mode)
        self.act = c.hidden_act

    def forward(self, x: Tensor) -> Tensor:
        g, u = self.gate_proj(x), self.up_proj(x)
        if self.act == "relu2":
            r = torch.relu(g)
            a = r * r
        else:
            a = g * torch.sigmoid(g)
        return self.down_proj(self.ffn_sub_norm(a * u))


class DecoderLayer(nn.Module):
    def __init__(self, c: LMConfig, mode: _Mode) -> None:
        super().__init__()
        self.input_layernorm = Norm(c.hidden_size, c.rms_norm_eps, mode)
        self.self_attn = Attention(c, mode)
        self.post_attention_layernorm = Norm(c.hidden_size, c.rms_norm_eps, mode)
        self.mlp = MLP(c, mode)

    def forward(self, h: Tensor, pos0: int, cache: Optional[KVCache], layer: int) -> Tensor:
        h = h + self.self_attn(self.input_layernorm(h), pos0, cache, layer)
        return h + self.mlp(self.post_attention_layernorm(h))


class _Backbone(nn.Module):
    def __init__(self, c: LMConfig, mode: _Mode) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(c, mode) for _ in range(c.num_hidden_layers))
        self.norm = Norm(c.hidden_size, c.rms_norm_eps, mode)


class BitNetLM(nn.Module):
    """The language model. ``forward(ids, cache=None)`` takes ids [T] or [B, T] and returns float32
    logits [T, vocab] or [B, T, vocab] for every position; with a cache, the tokens continue the
    cached ones (positions from ``cache.length``) and the cache grows by T."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self._m = _Mode(config.tilelli_activations)
        self.model = _Backbone(config, self._m)
        self.lm_head = None if config.tie_word_embeddings else nn.Linear(config.hidden_size, config.vocab_size,
                                                                         bias=False)

    # -- modes ------------------------------------------------------------------------------------
    def set_mode(self, mode: str = "train", activations: Optional[str] = None) -> "BitNetLM":
        """mode ``"train"`` (STE, float32 autograd) or ``"exact"`` (the runtime's numbers);
        activations ``"int8"`` / ``"float"`` (default: the config's ``tilelli_activations``)."""
        if mode not in ("train", "exact"):
            raise ValueError(f"set_mode: mode must be 'train' or 'exact', got {mode!r}")
        act = self.config.tilelli_activations if activations is None else activations
        if act not in ACTIVATIONS:
            raise ValueError(f"set_mode: activations must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
        self._m.exact, self._m.activations = mode == "exact", act
        return self

    @property
    def mode(self) -> tuple:
        return ("exact" if self._m.exact else "train", self._m.activations)

    def init_weights(self, generator: Optional[torch.Generator] = None, std: float = 0.02,
                     norm_jitter: float = 0.0, proj_std: Optional[float] = None) -> "BitNetLM":
        """Normal(0, std) embeddings and head, Normal(0, proj_std or 1/sqrt(in)) projections, norms 1
        (+ Normal(0, norm_jitter))."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("norm.weight") or "layernorm" in name:
                    p.fill_(1.0)
                    if norm_jitter:
                        p.add_(torch.randn(p.shape, generator=generator) * norm_jitter)
                elif p.dim() == 2 and "proj" in name:
                    sd = 1 / math.sqrt(p.shape[1]) if proj_std is None else proj_std
                    p.copy_(torch.randn(p.shape, generator=generator) * sd)
                else:
                    p.copy_(torch.randn(p.shape, generator=generator) * std)
        return self

    # -- forward ----------------------------------------------------------------------------------
    def head_weight(self) -> Tensor:
        return self.model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight

    def forward(self, ids, cache: Optional[KVCache] = None) -> Tensor:
        ids = torch.as_tensor(ids, dtype=torch.long)
        squeeze = ids.dim() == 1
        if squeeze:
            ids = ids[None]
        if ids.dim() != 2 or ids.shape[1] == 0:
            raise ValueError(f"BitNetLM: ids must be [T] or [batch, T] with T > 0, got shape {tuple(ids.shape)}")
        c = self.config
        if int(ids.min()) < 0 or int(ids.max()) >= c.vocab_size:
            raise ValueError(f"BitNetLM: token ids must be in [0, {c.vocab_size}), got {int(ids.min())}..{int(ids.max())}")
        B, T = ids.shape
        pos0 = 0
        if cache is not None:
            if cache.batch != B:
                raise ValueError(f"BitNetLM: the cache holds batch {cache.batch}, the ids batch {B}")
            pos0 = cache.length
            if pos0 + T > cache.capacity:
                raise ValueError(f"BitNetLM: {pos0} cached + {T} tokens exceed the cache's {cache.capacity}")
        elif T > c.max_position_embeddings:
            raise ValueError(f"BitNetLM: {T} tokens exceed max_position_embeddings {c.max_position_embeddings}")
        h = self.model.embed_tokens(ids)
        for i, layer in enumerate(self.model.layers):
            h = layer(h, pos0, cache, i)
        x = self.model.norm(h)
        w = self.head_weight()
        if self._m.exact:
            logits = (x.double() @ w.detach().double().t()).float()
        else:
            logits = F.linear(x, w)
        if cache is not None:
            cache.length = pos0 + T
        return logits[0] if squeeze else logits

    @torch.no_grad()
    def trace_quantization(self, fn, mode: str = "exact") -> tuple:
        """Run fn() with int8 activations in ``mode`` and return (fn's result, one float32 tensor of
        every x * s the activation quantizer rounded, in order)."""
        saved = (self._m.exact, self._m.activations)
        self.set_mode(mode, "int8")
        self._m.trace = []
        try:
            out = fn()
            trace = torch.cat(self._m.trace) if self._m.trace else torch.zeros(0)
        finally:
            self._m.exact, self._m.activations = saved
            self._m.trace = None
        return out, trace

    def boundary_margin(self, fn) -> tuple:
        """(fn's result in exact int8 mode, the smallest distance of any rounded x * s to a rounding
        boundary k + 0.5): how far a value may move before an int8 activation changes."""
        out, v = self.trace_quantization(fn, "exact")
        return out, boundary_distance(v)


    @torch.no_grad()
    def generate(self, prompt, max_new_tokens: int, temperature: float = 0.0, top_k: int = 0,
                 generator: Optional[torch.Generator] = None, stop: Optional[int] = None) -> list:
        """Greedy (temperature 0) or sampled continuation of one prompt, through the KV cache."""
        prompt = [int(t) for t in prompt]
        cache = KVCache(self.config, capacity=min(self.config.max_position_embeddings,
                                                  len(prompt) + max_new_tokens))
        logits = self(prompt, cache)[-1]
        out = []
        for i in range(max_new_tokens):
            if temperature <= 0:
                t = int(torch.argmax(logits))
            else:
                z = logits.double() / temperature
                if top_k > 0:
                    kth = torch.topk(z, min(top_k, z.numel())).values[-1]
                    z = z.masked_fill(z < kth, float("-inf"))
                t = int(torch.multinomial(torch.softmax(z, dim=-1), 1, generator=generator))
            out.append(t)
            if t == stop or i == max_new_tokens - 1 or cache.length >= cache.capacity:
                break
            logits = self([t], cache)[-1]
        return out

    # -- files ------------------------------------------------------------------------------------
    def tensors(self) -> list:
        """[(Hugging Face name, float32 numpy array)] in file order."""
        out = []
        for name, p in self.state_dict().items():
            out.append((name, p.detach().float().contiguous().numpy()))
        return out

    def save(self, path_dir: str, dtype: str = "F32") -> None:
        """config.json + model.safetensors (latent weights, Hugging Face names) with every tensor in
        dtype: "F32", or "F16" (each value rounded to the nearest float16, ties to even; config.json's
        torch_dtype says float16). A model read back from an F16 file holds those float16 values."""
        if dtype not in _ST_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(_ST_DTYPES)}, got {dtype!r}")
        os.makedirs(path_dir, exist_ok=True)
        self.config.write(os.path.join(path_dir, "config.json"), _ST_DTYPES[dtype][1])
        write_safetensors(os.path.join(path_dir, "model.safetensors"), self.tensors(), {"format": "pt"}, dtype)

    @classmethod
    def load(cls, path_dir: str) -> "BitNetLM":
        return load_lm(path_dir)


def boundary_distance(v: Tensor) -> float:
    """min over v of |v - (floor(v) + 0.5)|, in double (inf for an empty v)."""
    if v.numel() == 0:
        return float("inf")
    v = v.double()
    return float((v - torch.floor(v) - 0.5).abs().min())


def load_lm(path_dir: str) -> BitNetLM:
    """A directory with config.json and model.safetensors -> BitNetLM (train mode). Every tensor
    the config needs must be present with its shape; any other tensor is an error naming it."""
    cfg = LMConfig.read(os.path.join(path_dir, "config.json"))
    st_path = os.path.join(path_dir, "model.safetensors")
    tensors, _ = read_safetensors(st_path)
    model = BitNetLM(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = dict(tensors)
    missing = [k for k in expected if k not in have]
    if missing:
        raise LMConfigError(f"{st_path}: missing tensor {missing[0]} (shape {list(expected[missing[0]])})"
                            + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    extra = [k for k in have if k not in expected]
    if extra:
        raise LMConfigError(f"{st_path}: unexpected tensor {extra[0]} for this config"
                            + (" (lm_head.weight with tie_word_embeddings true)" if extra[0] == "lm_head.weight" else ""))
    for k, shape in expected.items():
        if tuple(have[k].shape) != shape:
            raise LMConfigError(f"{st_path}: tensor {k} has shape {list(have[k].shape)}, the config needs {list(shape)}")
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(have[k], dtype=np.float32)) for k in expected})
    return model


# ------------------------------------------------------------------------------------------------
# safetensors (the layout: 8-byte LE header length, JSON header, raw LE tensor bytes); the Python
# safetensors package is not a dependency
# ------------------------------------------------------------------------------------------------
_ST_DTYPES = {"F32": ("<f4", "float32"), "F16": ("<f2", "float16")}  # safetensors dtype: (numpy, torch_dtype)


def write_safetensors(path: str, tensors: list, metadata: Optional[dict] = None, dtype: str = "F32") -> None:
    """tensors: [(name, float32 array)] in file order, written as dtype ("F32", or "F16": rounded to
    the nearest float16, ties to even; a finite value beyond float16's range raises ValueError);
    metadata: {str: str}."""
    if dtype not in _ST_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_ST_DTYPES)}, got {dtype!r}")
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, off = [], 0
    for name, a in tensors:
        a = np.ascontiguousarray(a, dtype=np.float32)
        with np.errstate(over="ignore"):
            w = a.astype(_ST_DTYPES[dtype][0])
        if not np.array_equal(np.isfinite(w), np.isfinite(a)):
            raise ValueError(f"tensor {name}: a value beyond {dtype}'s range ({float(np.abs(a[np.isfinite(a)]).max())})")
        b = w.tobytes()
        header[name] = {"dtype": dtype, "shape": [int(d) for d in a.shape], "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    js = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    js += b" " * ((-len(js)) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


def read_safetensors(path: str) -> tuple[list, dict]:
    """([(name, float32 array)], metadata) from F32, F16 or BF16 tensors; LMConfigError when malformed."""
    with open(path, "rb") as fh:
        buf = fh.read()
    if len(buf) < 8:
        raise LMConfigError(f"{path}: too short for a safetensors file ({len(buf)} bytes)")
    n = int.from_bytes(buf[:8], "little")
    if 8 + n > len(buf):
        raise LMConfigError(f"{path}: header length {n} runs past the end of the file ({len(buf)} bytes)")
    try:
        hdr = json.loads(buf[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LMConfigError(f"{path}: the header is not JSON ({e})") from None
    data = memoryview(buf)[8 + n:]
    meta = hdr.pop("__metadata__", {}) or {}
    out = []
    for name, info in hdr.items():
        dt = info.get("dtype")
        shape = info.get("shape")
        begin, end = info.get("data_offsets", (0, -1))
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        size = {"F32": 4, "F16": 2, "BF16": 2}.get(dt)
        if size is None:
            raise LMConfigError(f"{path}: tensor {name} has dtype {dt}; float tensors F32, F16 or BF16 are read")
        if not 0 <= begin <= end <= len(data) or end - begin != count * size:
            raise LMConfigError(f"{path}: tensor {name}: data_offsets {[begin, end]} do not hold {shape} {dt}")
        raw = bytes(data[begin:end])
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        else:
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        out.append((name, a.reshape(shape).copy()))
    return out, meta

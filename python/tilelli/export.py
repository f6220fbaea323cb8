"""``tilelli.export``: a PyTorch module straight to a packed model file, no architecture JSON.

The module is traced with torch.fx (nested nn.Sequential and custom forwards are followed; tilelli's
layers and torch.nn's are kept whole), and the traced graph must be one chain from the input to
the output of supported steps:

    nn.Linear                         ``linear``, ternarized with the ``quantizer`` argument
    TernaryLinear                     ``linear`` with its own quantizer (lsq: its learned scale)
    BitLinear                         ``bitlinear`` (RMSNorm, int8 activations, its eps and norm weight)
    RMSNorm (tilelli's)               ``rmsnorm``
    nn.ReLU / GELU (exact) / SiLU / Softmax (last axis), and F.relu, F.gelu, F.silu, F.softmax,
    torch.relu, torch.softmax, x.relu(), x.softmax(-1)   the layer of that name
    nn.Flatten, torch.flatten(x, 1), x.flatten(1), x.view(x.size(0), -1), x.reshape(n, -1),
    nn.Identity, nn.Dropout, F.dropout                   nothing (the file holds flat vectors; inference)

Anything else is an ``ExportError`` naming the module (its qualified name) and its type.
"""
from __future__ import annotations

import operator
import os

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from . import tlm
from .modules import QUANTIZERS, BitLinear, RMSNorm, TernaryLinear, ternary_parts


class ExportError(ValueError):
    """A module that cannot become a packed model file; the message names the module and its type."""


SUPPORTED = ("nn.Linear, TernaryLinear, BitLinear, RMSNorm, nn.ReLU, nn.GELU(approximate='none'), nn.SiLU, "
             "nn.Softmax(dim=-1), nn.Flatten, nn.Identity, nn.Dropout, nested nn.Sequential, and custom "
             "forwards made of these")


def _typename(obj) -> str:
    t = obj if isinstance(obj, type) else type(obj)
    return f"{t.__module__}.{t.__qualname__}"


class _Tracer(fx.Tracer):
    """torch.fx's tracer that keeps tilelli's layers whole and records which module made each node."""

    def __init__(self) -> None:
        super().__init__()
        self._stack: list = []
        self.failed_in = None  # (qualified name, module) whose forward raised while tracing

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, (TernaryLinear, RMSNorm)):
            return True
        return super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        self._stack.append((self.path_of_module(m), m))
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                self.failed_in = self._stack[-1]
            raise
        finally:
            self._stack.pop()

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["tilelli_owner"] = self._stack[-1] if self._stack else None
        return node


_RELU = {F.relu, torch.relu, torch.relu_, F.relu_}
_GELU = {F.gelu}
_SILU = {F.silu}
_SOFTMAX = {F.softmax, torch.softmax}
_FLATTEN = {torch.flatten}
_NOOP = {F.dropout}


def _owner_text(node: fx.Node, root: nn.Module) -> str:
    owner = node.meta.get("tilelli_owner")
    if owner is None or owner[0] == "":
        return f"the model's forward ({_typename(root)})"
    return f"{owner[0]} ({_typename(owner[1])})"


def _hint(owner) -> str:
    if owner and isinstance(owner[1], nn.Linear):
        return ("; an nn.Linear subclass with its own forward cannot be read: load its state_dict into "
                "tilelli.TernaryLinear (or nn.Linear) instead")
    return ""


def _trace(model: nn.Module) -> fx.Graph:
    tracer = _Tracer()
    try:
        return tracer.trace(model)
    except Exception as e:  # torch.fx raises many types (TraceError, TypeError, ...) for untraceable code
        where = (f"{tracer.failed_in[0]} ({_typename(tracer.failed_in[1])})" if tracer.failed_in
                 else f"the model's forward ({_typename(model)})")
        raise ExportError(f"tilelli.export: torch.fx cannot trace {where}: {e}{_hint(tracer.failed_in)}") from e


def _steps(model: nn.Module) -> list:
    """The chain of steps (kind, name, module or None; a view's width for "reshape") from the traced graph."""
    graph = _trace(model)
    modules = dict(model.named_modules())
    nodes = list(graph.nodes)
    inputs = [n for n in nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise ExportError(f"tilelli.export: the model's forward ({_typename(model)}) takes "
                          f"{len(inputs)} inputs; a packed model takes one")
    cur = inputs[0]
    steps: list = []

    def only_input(node: fx.Node, what: str) -> None:
        used: list = []
        fx.node.map_arg((node.args, node.kwargs), used.append)
        if not node.args or node.args[0] is not cur or any(a is not cur for a in used if not _size_like(a)):
            raise ExportError(f"tilelli.export: {what} does not take the previous layer's output as its only "
                              "tensor input; a packed model is one chain of layers (no branches, no residuals)")

    for node in nodes:
        if node.op in ("placeholder", "output"):
            continue
        if node.op == "get_attr":
            owner = node.meta.get("tilelli_owner")
            raise ExportError(f"tilelli.export: {_owner_text(node, model)} uses the tensor {node.target} "
                              f"directly; only the supported layers may hold weights{_hint(owner)}")
        if _size_like(node):  # x.size(0), x.shape[0]: only feed a view's shape
            continue
        if node.op == "call_module":
            m = modules[node.target]
            what = f"{node.target} ({_typename(m)})"
            only_input(node, what)
            steps.append(_module_step(node.target, m, what))
        else:
            fn = node.target
            name = fn if isinstance(fn, str) else getattr(fn, "__name__", str(fn))
            what = f"the {'method' if node.op == 'call_method' else 'function'} {name} in {_owner_text(node, model)}"
            only_input(node, what)
            steps.append(_function_step(node, what))
        cur = node
    out = [n for n in nodes if n.op == "output"][0]
    if out.args[0] is not cur:
        raise ExportError(f"tilelli.export: the output of {_typename(model)} is not the last layer's output "
                          "(a tuple, a dict, or a value from the middle of the chain)")
    return [s for s in steps if s is not None]


def _size_like(n: fx.Node) -> bool:
    if n.op == "call_method" and n.target == "size":
        return True
    if n.op == "call_function" and n.target is getattr and len(n.args) == 2 and n.args[1] == "shape":
        return True
    return (n.op == "call_function" and n.target is operator.getitem and isinstance(n.args[0], fx.Node)
            and _size_like(n.args[0]))


def _module_step(qualname: str, m: nn.Module, what: str):
    if isinstance(m, BitLinear):
        return ("bitlinear", qualname, m)
    if isinstance(m, TernaryLinear):
        return ("ternary", qualname, m)
    if isinstance(m, nn.Linear):
        return ("linear", qualname, m)
    if isinstance(m, RMSNorm):
        return ("rmsnorm", qualname, m)
    if isinstance(m, nn.ReLU):
        return ("relu", qualname, None)
    if isinstance(m, nn.SiLU):
        return ("silu", qualname, None)
    if isinstance(m, nn.GELU):
        if m.approximate != "none":
            raise ExportError(f"tilelli.export: {what} uses approximate={m.approximate!r}; the runtime's gelu is "
                              "the exact (erf) form: use nn.GELU()")
        return ("gelu", qualname, None)
    if isinstance(m, nn.Softmax):
        if m.dim not in (None, -1, 1):
            raise ExportError(f"tilelli.export: {what} has dim={m.dim}; the runtime's softmax is over each vector "
                              "(dim=-1)")
        return ("softmax", qualname, None)
    if isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            raise ExportError(f"tilelli.export: {what} flattens dims {m.start_dim}..{m.end_dim}; only "
                              "nn.Flatten() (start_dim=1, end_dim=-1) is a no-op on the packed model's vectors")
        return None
    if isinstance(m, (nn.Identity, nn.Dropout)):
        return None
    raise ExportError(f"tilelli.export: {what} is not supported; supported: {SUPPORTED}")


def _arg(node: fx.Node, pos: int, key: str, default):
    if len(node.args) > pos:
        return node.args[pos]
    return node.kwargs.get(key, default)


def _function_step(node: fx.Node, what: str):
    fn, name = node.target, node.name
    if node.op == "call_method":
        if fn in ("relu", "relu_"):
            return ("relu", name, None)
        if fn == "softmax":
            dim = _arg(node, 1, "dim", None)
            if dim not in (-1, 1):
                raise ExportError(f"tilelli.export: {what} has dim={dim}; only softmax over each vector (dim=-1)")
            return ("softmax", name, None)
        if fn == "flatten":
            if _arg(node, 1, "start_dim", 0) != 1 or _arg(node, 2, "end_dim", -1) != -1:
                raise ExportError(f"tilelli.export: {what}: only flatten(1) (start_dim=1, end_dim=-1) is supported")
            return None
        if fn in ("view", "reshape"):
            shape = list(node.args[1:])
            if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
                shape = list(shape[0])
            if len(shape) != 2 or shape[1] != -1 and not isinstance(shape[1], int):
                raise ExportError(f"tilelli.export: {what}: only a view to (batch, -1) or (batch, width) is supported")
            return ("reshape", name, shape[1])
        if fn in ("float", "contiguous"):
            return None
        raise ExportError(f"tilelli.export: {what} is not supported; supported: {SUPPORTED}")
    if fn in _RELU:
        return ("relu", name, None)
    if fn in _SILU:
        return ("silu", name, None)
    if fn in _GELU:
        if _arg(node, 1, "approximate", "none") != "none":
            raise ExportError(f"tilelli.export: {what} uses the tanh approximation; the runtime's gelu is exact")
        return ("gelu", name, None)
    if fn in _SOFTMAX:
        dim = _arg(node, 1, "dim", None)
        if dim not in (-1, 1):
            raise ExportError(f"tilelli.export: {what} has dim={dim}; only softmax over each vector (dim=-1)")
        return ("softmax", name, None)
    if fn in _FLATTEN:
        if _arg(node, 1, "start_dim", 0) != 1 or _arg(node, 2, "end_dim", -1) != -1:
            raise ExportError(f"tilelli.export: {what}: only flatten(x, 1) (start_dim=1, end_dim=-1) is supported")
        return None
    if fn in _NOOP:
        return None
    raise ExportError(f"tilelli.export: {what} is not supported; supported: {SUPPORTED}")


def _finite(t: torch.Tensor, what: str) -> np.ndarray:
    a = t.detach().cpu().float().contiguous().numpy()
    if not np.all(np.isfinite(a)):
        raise ExportError(f"tilelli.export: {what} holds a NaN or an infinity")
    return a


def layers_of(model: nn.Module, *, quantizer: str = "per_tensor", activations: str = "float",
              format: str = "i2", input_size: int | None = None) -> tuple[int, list]:
    """(input width, the layer list for ``tlm.write``) of a module; see ``export``."""
    if quantizer not in QUANTIZERS:
        raise ExportError(f"tilelli.export: quantizer must be one of {', '.join(QUANTIZERS)}, got {quantizer!r}")
    if activations not in tlm.ACTIVATIONS:
        raise ExportError(f"tilelli.export: activations must be float or int8, got {activations!r}")
    if format not in tlm.FORMATS:
        raise ExportError(f"tilelli.export: format must be one of {', '.join(tlm.FORMATS)}, got {format!r}")
    steps = _steps(model)
    layers: list = []
    width = input_size
    for kind, name, m in steps:
        if kind in ("linear", "ternary", "bitlinear"):
            what = f"{name} ({_typename(m)})"
            w = m.weight
            if w.dim() != 2:
                raise ExportError(f"tilelli.export: {what} has a weight of shape {tuple(w.shape)}, not [out, in]")
            if width is not None and w.shape[1] != width:
                raise ExportError(f"tilelli.export: {what} takes {w.shape[1]} inputs but gets vectors of {width}")
            if width is None:
                width = input_size = int(w.shape[1])
            wf = torch.from_numpy(_finite(w, f"{what} weight"))
            if kind == "linear":
                if quantizer == "lsq":
                    raise ExportError(f"tilelli.export: {what}: quantizer='lsq' needs a learned scale; a plain "
                                      "nn.Linear has none (train with TernaryLinear(quantizer='lsq'))")
                q, alpha = quantizer, None
            else:
                q = m.quantizer
                alpha = m.scale.value().detach().cpu().float() if q == "lsq" else None
                if alpha is not None:
                    _finite(alpha, f"{what} learned scale")
            trits, scales = ternary_parts(wf, q, alpha)
            L = {"type": "bitlinear" if kind == "bitlinear" else "linear", "trits": trits.numpy(),
                 "scales": scales.numpy(), "format": format, "quantizer": q, "name": name,
                 "bias": None if m.bias is None else _finite(m.bias, f"{what} bias")}
            if kind == "bitlinear":
                L["eps"] = m.eps
                L["norm_weight"] = None if m.norm_weight is None else _finite(m.norm_weight, f"{what} norm weight")
            else:
                L["activations"] = activations
            layers.append(L)
            width = int(w.shape[0])
        elif kind == "rmsnorm":
            what = f"{name} ({_typename(m)})"
            if width is not None and m.dim != width:
                raise ExportError(f"tilelli.export: {what} normalizes {m.dim} values but gets vectors of {width}")
            if width is None:
                width = input_size = m.dim
            layers.append({"type": "rmsnorm", "eps": m.eps, "name": name,
                           "weight": None if m.weight is None else _finite(m.weight, f"{what} weight")})
        elif kind == "reshape":
            if m != -1 and width is not None and m != width:
                raise ExportError(f"tilelli.export: the view {name} to width {m} does not match the vectors of {width}")
        else:
            layers.append({"type": kind, "name": name})
    if not any(L["type"] in ("linear", "bitlinear") for L in layers):
        raise ExportError(f"tilelli.export: {_typename(model)} has no linear layer to pack")
    if input_size is None:
        raise ExportError("tilelli.export: the input width is unknown before the first layer: pass input_size=")
    return input_size, layers


@torch.no_grad()
def export(model: nn.Module, path: str | os.PathLike | None, *, format: str = "i2", quantizer: str = "per_tensor",
           activations: str = "float", input_size: int | None = None, metadata: dict | None = None,
           version: int | None = None) -> bytes:
    """Write ``model`` as a packed model file (docs/FORMATS.md) and return the bytes.

    format       the packing of every ternary layer: ``i2``, ``tq1`` or ``bitplane``
    quantizer    how plain nn.Linear weights become trits and scales: ``per_tensor`` or ``per_row``
                 (TernaryLinear and BitLinear keep their own, and lsq its learned scale)
    activations  ``float`` or ``int8``: the input precision of every ``linear`` layer (int8 is the
                 BitNet per-token quantizer, and needs file version 2); ``bitlinear`` is always int8
    input_size   the input width, needed only when no layer before the first activation tells it
    metadata     extra strings for the header's metadata
    version      None: 1 when nothing needs version 2 (then the quantizer and name keys are left out),
                 else 2 with every layer's quantizer and qualified name
    """
    n_in, layers = layers_of(model, quantizer=quantizer, activations=activations, format=format,
                             input_size=input_size)
    meta = {"weights": format, "exporter": "tilelli.export (Python)", "torch": torch.__version__}
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    return tlm.write(path, n_in, layers, meta, version=version)

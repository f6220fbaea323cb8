"""tilelli for PyTorch: ternary (BitNet b1.58) quantizers and layers, and ``export`` to the packed model
file that tilelli runs in browsers, Node, workers and edge runtimes (the npm package ``tilelli``).

    import tilelli
    tilelli.export(model, "mlp.tlm")          # nn.Sequential / custom forward of Linear, ReLU, ...
    packed = tilelli.load("mlp.tlm")          # an nn.Module computing what the packed file computes
    tilelli.inspect("mlp.tlm")                # the layer list
    lm = tilelli.load_lm("dir")               # a BitNet b1.58 language model (config.json + model.safetensors)
"""
from .export import ExportError, export
from .lm import BitNetLM, KVCache, LMConfig, LMConfigError, load_lm
from .modules import (BitLinear, RMSNorm, TernaryLinear, fake_quantize_activations, quantize_activations,
                      ternary_parts)
from .packed import Binarize, PackedLinear, PackedModel, inspect, load
from .quant import (EPS, LearnableScale, absmean_scale, absmean_scale_per_row, deadzone_stats, lsq_signs,
                    ternarize, ternarize_lsq, ternarize_per_row, ternary_signs, ternary_signs_per_row,
                    ternary_values, ternary_values_per_row)
from .tlm import TlmError

__version__ = "0.1.0"

__all__ = [
    "EPS", "absmean_scale", "ternarize", "ternary_values", "ternary_signs",
    "absmean_scale_per_row", "ternarize_per_row", "ternary_values_per_row", "ternary_signs_per_row",
    "LearnableScale", "ternarize_lsq", "lsq_signs", "deadzone_stats",
    "TernaryLinear", "BitLinear", "RMSNorm", "quantize_activations", "fake_quantize_activations", "ternary_parts",
    "BitNetLM", "LMConfig", "LMConfigError", "KVCache", "load_lm",
    "export", "load", "inspect", "ExportError", "TlmError", "PackedModel", "PackedLinear", "Binarize",
]

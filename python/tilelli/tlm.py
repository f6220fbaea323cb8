"""The packed model file (``.tlm``): its writer and its reader, in one place.

The byte layout is docs/FORMATS.md ("The packed model file" and the i2 / tq1 / bitplane sections)
plus the version-2 layer keys ``activations``, ``quantizer`` and ``name``. A file is written as
version 1 when it needs none of them, so that every tilelli release reads it; ``tilelli.export``
builds the layer list from a PyTorch module and calls ``write``.

    write(path, input_size, layers, metadata=None, version=None) -> bytes
    read(path_or_bytes) -> Tlm(version, input, layers, metadata)   (validated; trits unpacked)

Layers given to ``write`` (and returned by ``read``) are dicts:
    {"type": "linear" | "bitlinear", "trits": int8 [out, in], "scales": float32 [out],
     "bias": float32 [out] | None, "format": "i2" | "tq1" | "bitplane",
     "activations": "float" | "int8" (linear), "quantizer": str | None, "name": str | None,
     "norm_weight": float32 [in] | None, "eps": float | None (bitlinear)}
    {"type": "relu" | "gelu" | "silu" | "softmax", "name"?}
    {"type": "rmsnorm", "weight": float32 [dim] | None, "eps": float | None, "name"?}
    {"type": "binarize", "threshold": float} or {"type": "binarize", "k": int}
"""
from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"TLML"
MAX_VERSION = 2
FORMATS = ("i2", "tq1", "bitplane")
ACTIVATIONS = ("float", "int8")
QUANTIZERS = ("per_tensor", "per_row", "lsq")
MAX_ELEMENTS = (1 << 30) - 1
SIMPLE = ("relu", "gelu", "silu", "softmax")


class TlmError(ValueError):
    """A packed model file that cannot be written or read; the message names the layer and the field."""


# ------------------------------------------------------------------------------------------------
# the three packed formats (docs/FORMATS.md); one row padded to whole blocks, zero trits in padding
# ------------------------------------------------------------------------------------------------
def row_bytes(cols: int, fmt: str) -> int:
    if fmt == "i2":
        return -(-cols // 64) * 16
    if fmt == "tq1":
        return -(-cols // 80) * 16
    if fmt == "bitplane":
        return -(-cols // 128) * 32
    raise TlmError(f"unknown format {fmt!r} (i2, tq1, bitplane)")


def _padded(trits: np.ndarray, block: int) -> np.ndarray:
    rows, cols = trits.shape
    out = np.zeros((rows, -(-cols // block) * block), dtype=np.int8)
    out[:, :cols] = trits
    return out


_POW3 = np.array([81, 27, 9, 3, 1], dtype=np.int32)  # digit 0 is the most significant


def pack(trits: np.ndarray, fmt: str) -> bytes:
    """int8 trits [rows, cols] -> the packed bytes (rows * row_bytes(cols, fmt))."""
    t = np.asarray(trits)
    if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 1:
        raise TlmError(f"pack: trits must be a non-empty [rows, cols] array, got shape {t.shape}")
    if t.size and (t.min() < -1 or t.max() > 1):
        raise TlmError("pack: a trit is outside {-1, 0, +1}")
    rows = t.shape[0]
    t = t.astype(np.int8)
    if fmt == "i2":
        # weight w of a 64-block: byte 2 * (w % 8) + w // 32, bits 2 * ((w // 8) % 4)
        c = (_padded(t, 64) + 1).astype(np.uint8).reshape(rows, -1, 2, 4, 8)  # [.., w//32, (w//8)%4, w%8]
        b = c[:, :, :, 0] | (c[:, :, :, 1] << 2) | (c[:, :, :, 2] << 4) | (c[:, :, :, 3] << 6)
        return np.ascontiguousarray(b.transpose(0, 1, 3, 2)).tobytes()   # byte 2 * (w % 8) + w // 32
    if fmt == "tq1":
        # weight w of an 80-block: digit w // 16 of byte w % 16; q = ceil(v * 256 / 243)
        c = (_padded(t, 80) + 1).astype(np.int32).reshape(rows, -1, 5, 16)
        v = np.tensordot(c, _POW3, axes=([2], [0]))               # [rows, blocks, 16]
        return ((v * 256 + 242) // 243).astype(np.uint8).tobytes()
    if fmt == "bitplane":
        p = _padded(t, 128)
        pos = np.packbits(p == 1, axis=1, bitorder="little")
        neg = np.packbits(p == -1, axis=1, bitorder="little")
        return np.concatenate([pos, neg], axis=1).tobytes()
    raise TlmError(f"unknown format {fmt!r} (i2, tq1, bitplane)")


def unpack(data: bytes, rows: int, cols: int, fmt: str) -> np.ndarray:
    """The packed bytes -> int8 trits [rows, cols]; invalid bytes (i2 code 3, a tq1 byte outside
    the 243, a bit in both bitplanes, nonzero padding) raise TlmError."""
    rb = row_bytes(cols, fmt)
    if len(data) != rows * rb:
        raise TlmError(f"unpack: {len(data)} bytes, a {rows} x {cols} {fmt} matrix has {rows * rb}")
    b = np.frombuffer(data, dtype=np.uint8).reshape(rows, -1)
    if fmt == "i2":
        shifts = np.array([0, 2, 4, 6], dtype=np.uint8)
        lanes = b.reshape(rows, -1, 8, 2).transpose(0, 1, 3, 2)         # [.., w//32, w%8]
        c = (lanes[:, :, :, None, :] >> shifts[None, None, None, :, None]) & 3   # [.., w//32, (w//8)%4, w%8]
        c = c.reshape(rows, -1)
        if np.any(c == 3):
            raise TlmError("unpack: an i2 code 3")
        t = c.astype(np.int8) - 1
    elif fmt == "tq1":
        q = b.astype(np.int32).reshape(rows, -1, 1, 16)
        p3 = np.array([1, 3, 9, 27, 81], dtype=np.int32).reshape(1, 1, 5, 1)
        c = (((q * p3) % 256) * 3) >> 8                                  # [rows, blocks, digit, byte]
        v = np.tensordot(c, _POW3, axes=([2], [0]))
        if np.any((v * 256 + 242) // 243 != b.reshape(rows, -1, 16)):
            raise TlmError("unpack: a tq1 byte outside the 243 valid values")
        t = c.reshape(rows, -1).astype(np.int8) - 1
    elif fmt == "bitplane":
        half = rb // 2
        pos = np.unpackbits(b[:, :half], axis=1, bitorder="little").astype(bool)
        neg = np.unpackbits(b[:, half:], axis=1, bitorder="little").astype(bool)
        if np.any(pos & neg):
            raise TlmError("unpack: a bit set in both bitplanes")
        t = pos.astype(np.int8) - neg.astype(np.int8)
    else:
        raise TlmError(f"unknown format {fmt!r} (i2, tq1, bitplane)")
    if np.any(t[:, cols:] != 0):
        raise TlmError(f"unpack: nonzero padding in a {fmt} matrix")
    return np.ascontiguousarray(t[:, :cols])


# ------------------------------------------------------------------------------------------------
# writer
# ------------------------------------------------------------------------------------------------
def _f32(v, n: int, what: str) -> bytes:
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    if a.size != n:
        raise TlmError(f"{what} has {a.size} values, needs {n}")
    if not np.all(np.isfinite(a)):
        raise TlmError(f"{what} holds a NaN or an infinity")
    return a.astype("<f4").tobytes()


def _needs_v2(L: dict) -> bool:
    return L.get("activations", "float") != "float"


def write(path: str | os.PathLike | None, input_size: int, layers: list, metadata: dict | None = None,
          version: int | None = None) -> bytes:
    """Write the packed model file (to ``path`` unless it is None) and return its bytes.

    version None: 1 when no layer needs a version-2 key (int8 activations), then the informational
    ``quantizer`` and ``name`` keys are left out so that every tilelli release reads the file; 2
    otherwise, with them. version 2 forces them; version 1 with int8 activations is an error."""
    if not isinstance(input_size, int) or input_size <= 0:
        raise TlmError(f"input must be a positive integer, got {input_size!r}")
    if not layers:
        raise TlmError("a model needs at least one layer")
    need2 = any(_needs_v2(L) for L in layers)
    if version is None:
        version = 2 if need2 else 1
    if version not in (1, 2):
        raise TlmError(f"version must be 1 or 2, got {version!r}")
    if version == 1 and need2:
        bad = next(i for i, L in enumerate(layers) if _needs_v2(L))
        raise TlmError(f"layers[{bad}] has int8 activations, which need version 2")

    blobs: list = []
    offset = 0

    def blob(data: bytes) -> list:
        nonlocal offset
        at = offset
        blobs.append((at, data))
        offset += -(-len(data) // 16) * 16
        return [at, len(data)]

    def name(L: dict) -> dict:
        return {"name": str(L["name"])} if version == 2 and L.get("name") else {}

    width = input_size
    out = []
    for i, L in enumerate(layers):
        where = f"layers[{i}]" + (f" ({L['name']})" if L.get("name") else "")
        kind = L.get("type")
        if kind in ("linear", "bitlinear"):
            t = np.asarray(L["trits"])
            if t.ndim != 2:
                raise TlmError(f"{where}: trits must be [out, in], got shape {t.shape}")
            rows, cols = int(t.shape[0]), int(t.shape[1])
            if cols != width:
                raise TlmError(f"{where} takes {cols} inputs but the layer before gives {width}")
            if rows * cols > MAX_ELEMENTS:
                raise TlmError(f"{where}: {rows} x {cols} is more than 2^30 - 1 weights")
            fmt = L.get("format", "i2")
            if fmt not in FORMATS:
                raise TlmError(f"{where}: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
            act = L.get("activations", "float")
            if act not in ACTIVATIONS or (kind == "bitlinear" and act != "float"):
                raise TlmError(f"{where}: activations must be float or int8 (linear only), got {act!r}")
            q = L.get("quantizer") if version == 2 else None
            if q is not None and q not in QUANTIZERS:
                raise TlmError(f"{where}: quantizer must be one of {', '.join(QUANTIZERS)}, got {q!r}")
            # keys in the order of the C writer (src/model.c), so that both write the same bytes
            h: dict = {"type": kind, **name(L), "in": cols, "out": rows, "weights": fmt,
                       "packed": blob(pack(t, fmt)), "scales": blob(_f32(L["scales"], rows, f"{where} scales"))}
            if q is not None:
                h["quantizer"] = q
            if L.get("bias") is not None:
                h["bias"] = blob(_f32(L["bias"], rows, f"{where} bias"))
            if act == "int8":
                h["activations"] = "int8"
            if kind == "bitlinear":
                if L.get("norm_weight") is not None:
                    h["norm_weight"] = blob(_f32(L["norm_weight"], cols, f"{where} norm_weight"))
                h["eps"] = _eps(L.get("eps"), where)
            width = rows
        elif kind == "rmsnorm":
            h = {"type": "rmsnorm", **name(L), "dim": width}
            if L.get("weight") is not None:
                h["weight"] = blob(_f32(L["weight"], width, f"{where} weight"))
            h["eps"] = _eps(L.get("eps"), where)
        elif kind == "binarize":
            if L.get("k") is not None:
                k = L["k"]
                if not isinstance(k, int) or not 1 <= k <= width:
                    raise TlmError(f"{where}: k must be an integer in 1..{width}, got {k!r}")
                h = {"type": "binarize", **name(L), "k": k}
            else:
                th = float(L.get("threshold", 0.0))
                if not math.isfinite(th):
                    raise TlmError(f"{where}: the threshold must be finite")
                h = {"type": "binarize", **name(L), "threshold": _Number(th)}
            nxt = layers[i + 1]["type"] if i + 1 < len(layers) else None
            if nxt != "linear":  # the runtime feeds the bits to the popcount kernel of a linear layer
                raise TlmError(f"{where}: binarize must be followed by a linear layer")
        elif kind in SIMPLE:
            h = {"type": kind, **name(L)}
        else:
            raise TlmError(f"{where}: unknown layer type {kind!r}")
        out.append(h)

    header: dict = {"format": "tilelli-model", "version": version, "input": input_size, "layers": out}
    if metadata is not None:
        header["metadata"] = {str(k): str(v) for k, v in metadata.items()}
    js = _dump(header).encode("utf-8")
    hlen = -(-(16 + len(js)) // 16) * 16 - 16          # 16 + H is a multiple of 16; spaces pad it
    end = max((at + len(d) for at, d in blobs), default=0)   # the file ends with the last blob
    buf = bytearray(16 + hlen + end)
    buf[0:4] = MAGIC
    buf[4:16] = struct.pack("<IQ", version, hlen)
    buf[16:16 + hlen] = js + b" " * (hlen - len(js))
    for at, d in blobs:
        buf[16 + hlen + at:16 + hlen + at + len(d)] = d
    data = bytes(buf)
    read(data)  # a writer bug must not leave a file that fails only on a user's machine
    if path is not None:
        with open(path, "wb") as fh:
            fh.write(data)
    return data


def _eps(v, where: str) -> "_Number":
    e = 1e-5 if v is None else float(v)
    if not 0 < e < 1:
        raise TlmError(f"{where}: eps must be in (0, 1), got {v!r}")
    return _Number(e)


class _Number:
    """A float32 parameter (eps, threshold) as the C writer prints it: the shortest %.<p>g, p >= 9,
    that reads back as the same double (the runtime keeps these as float32)."""

    def __init__(self, v: float) -> None:
        self.value = float(np.float32(v))
        for prec in range(9, 18):
            self.text = "%.*g" % (prec, self.value)
            if float(self.text) == self.value:
                break


def _dump(v) -> str:
    """Compact JSON with the C writer's number forms (json.dumps cannot print a float its own way)."""
    if isinstance(v, _Number):
        return v.text
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + _dump(x) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_dump(x) for x in v) + "]"
    if isinstance(v, bool) or v is None or not isinstance(v, (int, str)):
        raise TypeError(f"_dump: unexpected {type(v).__name__}")
    return json.dumps(v, ensure_ascii=False)


# ------------------------------------------------------------------------------------------------
# reader
# ------------------------------------------------------------------------------------------------
@dataclass
class Tlm:
    version: int
    input: int
    layers: list
    metadata: dict = field(default_factory=dict)

    @property
    def output(self) -> int:
        w = self.input
        for L in self.layers:
            if L["type"] in ("linear", "bitlinear"):
                w = L["out"]
        return w


_KEYS = {
    "linear": {"type", "in", "out", "weights", "packed", "scales", "bias", "activations", "quantizer", "name"},
    "bitlinear": {"type", "in", "out", "weights", "packed", "scales", "bias", "norm_weight", "eps", "quantizer",
                  "name"},
    "rmsnorm": {"type", "dim", "weight", "eps", "name"},
    "binarize": {"type", "threshold", "k", "name"},
}
_V2_KEYS = {"activations", "quantizer", "name"}


def read(source) -> Tlm:
    """Read and validate a packed model file (a path, or its bytes). Trits come back unpacked."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        buf = bytes(source)
    else:
        with open(source, "rb") as fh:
            buf = fh.read()
    if len(buf) < 16 or buf[:4] != MAGIC:
        raise TlmError("not a tilelli model file (no TLML magic)")
    version, hlen = struct.unpack_from("<IQ", buf, 4)
    if version == 0:
        raise TlmError("format version 0")
    if version > MAX_VERSION:
        raise TlmError(f"format version {version} is newer than this reader ({MAX_VERSION})")
    if hlen > len(buf) - 16 or (16 + hlen) % 16:
        raise TlmError(f"header length {hlen} does not fit the file or the 16-byte alignment")
    try:
        header = json.loads(buf[16:16 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TlmError(f"the header is not UTF-8 JSON: {e}") from None
    if not isinstance(header, dict):
        raise TlmError("the header is not a JSON object")
    unknown = set(header) - {"format", "version", "input", "layers", "metadata"}
    if unknown:
        raise TlmError(f"unknown header key {sorted(unknown)[0]!r}")
    if header.get("format") != "tilelli-model" or header.get("version") != version:
        raise TlmError("the header's format is not tilelli-model, or its version differs from the file's")
    inp = header.get("input")
    if not isinstance(inp, int) or isinstance(inp, bool) or inp <= 0:
        raise TlmError(f"input must be a positive integer, got {inp!r}")
    meta = header.get("metadata", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise TlmError("metadata must be an object of strings")
    hl = header.get("layers")
    if not isinstance(hl, list) or not hl:
        raise TlmError("layers must be a non-empty list")
    data = memoryview(buf)[16 + hlen:]
    spans: list = []

    def get_blob(h: dict, key: str, want: int, where: str) -> bytes:
        r = h.get(key)
        if (not isinstance(r, list) or len(r) != 2 or not all(isinstance(x, int) and not isinstance(x, bool)
                                                             for x in r)):
            raise TlmError(f"{where}.{key} must be [offset, length]")
        off, n = r
        if off < 0 or off % 16 or n != want or off + n > len(data):
            raise TlmError(f"{where}.{key}: [{off}, {n}] is not a 16-aligned range of {want} bytes in the data")
        for a, b in spans:
            if off < b and a < off + n:
                raise TlmError(f"{where}.{key} overlaps another blob")
        spans.append((off, off + n))
        return bytes(data[off:off + n])

    def f32(h, key, n, where):
        a = np.frombuffer(get_blob(h, key, 4 * n, where), dtype="<f4").astype(np.float32)
        if not np.all(np.isfinite(a)):
            raise TlmError(f"{where}.{key} holds a NaN or an infinity")
        return a

    width = inp
    layers = []
    for i, h in enumerate(hl):
        where = f"layers[{i}]"
        if not isinstance(h, dict):
            raise TlmError(f"{where} must be an object")
        kind = h.get("type")
        allowed = _KEYS.get(kind, {"type", "name"} if kind in SIMPLE else None)
        if allowed is None:
            raise TlmError(f"{where}: unknown layer type {kind!r}")
        extra = set(h) - allowed
        if version < 2:
            extra |= set(h) & _V2_KEYS
        if extra:
            raise TlmError(f"{where}: unknown key {sorted(extra)[0]!r}" + (" (a version-2 key in a version-1 file)"
                                                                          if set(h) & _V2_KEYS and version < 2 else ""))
        L: dict = {"type": kind}
        if "name" in h:
            if not isinstance(h["name"], str):
                raise TlmError(f"{where}.name must be a string")
            L["name"] = h["name"]
        if kind in ("linear", "bitlinear"):
            cols, rows, fmt = h.get("in"), h.get("out"), h.get("weights")
            if not (isinstance(cols, int) and isinstance(rows, int) and cols > 0 and rows > 0):
                raise TlmError(f"{where}: in and out must be positive integers")
            if cols != width:
                raise TlmError(f"{where} takes {cols} inputs but the layer before gives {width}")
            if rows * cols > MAX_ELEMENTS:
                raise TlmError(f"{where}: more than 2^30 - 1 weights")
            if fmt not in FORMATS:
                raise TlmError(f"{where}.weights must be one of {', '.join(FORMATS)}, got {fmt!r}")
            try:
                trits = unpack(get_blob(h, "packed", rows * row_bytes(cols, fmt), where), rows, cols, fmt)
            except TlmError as e:
                raise TlmError(f"{where}.packed: {e}") from None
            L.update({"in": cols, "out": rows, "format": fmt, "trits": trits,
                      "scales": f32(h, "scales", rows, where),
                      "bias": f32(h, "bias", rows, where) if "bias" in h else None})
            act = h.get("activations", "float")
            if act not in ACTIVATIONS:
                raise TlmError(f"{where}.activations must be float or int8, got {act!r}")
            if kind == "linear":
                L["activations"] = act
            if "quantizer" in h:
                if h["quantizer"] not in QUANTIZERS:
                    raise TlmError(f"{where}.quantizer must be one of {', '.join(QUANTIZERS)}")
                L["quantizer"] = h["quantizer"]
            if kind == "bitlinear":
                L["norm_weight"] = f32(h, "norm_weight", cols, where) if "norm_weight" in h else None
                L["eps"] = _read_eps(h, where)
            width = rows
        elif kind == "rmsnorm":
            if h.get("dim") != width:
                raise TlmError(f"{where}.dim must be the width {width}, got {h.get('dim')!r}")
            L.update({"dim": width, "weight": f32(h, "weight", width, where) if "weight" in h else None,
                      "eps": _read_eps(h, where)})
        elif kind == "binarize":
            if ("k" in h) == ("threshold" in h):
                raise TlmError(f"{where}: binarize needs threshold or k (one of them)")
            if "k" in h:
                k = h["k"]
                if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= width:
                    raise TlmError(f"{where}.k must be an integer in 1..{width}")
                L["k"] = k
            else:
                th = h["threshold"]
                if not isinstance(th, (int, float)) or isinstance(th, bool) or not math.isfinite(th):
                    raise TlmError(f"{where}.threshold must be a finite number")
                L["threshold"] = float(th)
            if i + 1 >= len(hl) or not isinstance(hl[i + 1], dict) or hl[i + 1].get("type") != "linear":
                raise TlmError(f"{where}: binarize must be followed by a linear layer")
        layers.append(L)
    return Tlm(version=version, input=inp, layers=layers, metadata=dict(meta))


def _read_eps(h: dict, where: str) -> float:
    e = h.get("eps", 1e-5)
    if not isinstance(e, (int, float)) or isinstance(e, bool) or not 0 < e < 1:
        raise TlmError(f"{where}.eps must be a number in (0, 1)")
    return float(e)


def describe(model: Tlm) -> list:
    """The layer list without weights: {type, in, out, format?, quantizer?, activations?, name?, bias?}."""
    out = []
    width = model.input
    for L in model.layers:
        d: dict = {"type": L["type"], "in": width}
        if L["type"] in ("linear", "bitlinear"):
            width = L["out"]
            d.update({"out": width, "format": L["format"], "bias": L["bias"] is not None})
            for k in ("quantizer", "activations"):
                if k in L:
                    d[k] = L[k]
            if L["type"] == "bitlinear":
                d.update({"eps": L["eps"], "norm_weight": L["norm_weight"] is not None})
        else:
            d["out"] = width
            for k in ("eps", "threshold", "k"):
                if k in L:
                    d[k] = L[k]
            if L["type"] == "rmsnorm":
                d["weight"] = L["weight"] is not None
        if "name" in L:
            d["name"] = L["name"]
        out.append(d)
    return out

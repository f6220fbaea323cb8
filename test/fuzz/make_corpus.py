#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (test/fuzz/corpus/<target>/).

Standard library only; deterministic: re-running rewrites the same bytes. The safetensors seeds
are written after the format's spec (8-byte little-endian header length, JSON header padded
with spaces, data), by hand here rather than by any safetensors writer.

    python3 test/fuzz/make_corpus.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def st_file(tensors, metadata=None, pad_to=8, raw_header=None, data=b""):
    """tensors: list of (name, dtype, shape, payload bytes); data laid out in order."""
    header, blob = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(payload)]}
        blob += payload
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % pad_to)
    return struct.pack("<Q", len(h)) + h, blob + data


def st_bytes(*args, **kw):
    head, blob = st_file(*args, **kw)
    return head + blob


def header_mode(*args, **kw):
    """The fuzz target's second framing: header, a NUL, then the data."""
    head, blob = st_file(*args, **kw)
    return head[8:] + b"\0" + blob


F32 = struct.pack("<4f", 1.0, -2.5, 0.0, 3e-3)
F16 = struct.pack("<4H", 0x3C00, 0x0001, 0x7C00, 0x7E00)
BF16 = struct.pack("<2H", 0x3F80, 0xFF80)
ALL = [
    ("w", "F32", [2, 2], F32),
    ("h", "F16", [4], F16),
    ("b", "BF16", [2, 1], BF16),
    ("i", "I8", [3], bytes([0x80, 0xFF, 0x7F])),
    ("u", "U8", [1, 3], bytes([0, 128, 255])),
    ("s", "F32", [], struct.pack("<f", 42.0)),
    ("e", "F16", [0, 4], b""),
]


def main():
    # safetensors: valid files
    write("safetensors", "valid_all_dtypes.st", st_bytes(ALL, metadata={"format": "pt", "note": "caf\u00e9"}))
    write("safetensors", "valid_empty_header.st", st_bytes([], pad_to=1))
    write("safetensors", "valid_metadata_only.st", st_bytes([], metadata={"a": "b"}))
    write("safetensors", "valid_unaligned.st",
          st_bytes([("a", "U8", [1], b"\x01"), ("b", "F32", [2], struct.pack("<2f", 1.5, -1.5))], pad_to=1))
    # safetensors: broken files, one flaw each
    write("safetensors", "bad_overlap.st", st_bytes([], raw_header=(
        b'{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},'
        b'"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}'), data=b"abcdef"))
    write("safetensors", "bad_dtype.st", st_bytes([("x", "F64", [1], b"\0" * 8)]))
    write("safetensors", "bad_size.st", st_bytes([], raw_header=(
        b'{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}'), data=b"\0" * 8))
    write("safetensors", "bad_overflow.st", st_bytes([], raw_header=(
        b'{"a":{"dtype":"U8","shape":[65536,65536],"data_offsets":[0,1]}}'), data=b"\0"))
    write("safetensors", "bad_header_length.st", struct.pack("<Q", 1 << 40) + b"{}")
    write("safetensors", "bad_metadata.st", st_bytes([], raw_header=b'{"__metadata__":{"a":1}}'))
    write("safetensors", "bad_truncated.st", st_bytes(ALL)[:-3])
    # the header + NUL + data framing
    write("safetensors", "hdr_all_dtypes.bin", header_mode(ALL, metadata={"k": "v"}, pad_to=1))
    write("safetensors", "hdr_overlap.bin", header_mode([], raw_header=(
        b'{"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]},'
        b'"b":{"dtype":"I8","shape":[2],"data_offsets":[1,3]}}'), data=b"xyz"))
    write("safetensors", "hdr_empty_tensor.bin", header_mode([], raw_header=(
        b'{"z":{"dtype":"BF16","shape":[2,0],"data_offsets":[1,1]},'
        b'"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}'), data=b"ab"))

    # json: valid documents
    write("json", "object.json", '{"a": [1, -2.5e-3, "x\\u00e9\\uD83D\\uDE00", true, false, null], "b": {}}')
    write("json", "numbers.json", "[0, -0, 9223372036854775807, -9223372036854775808, 9223372036854775808, "
                                  "1e308, 4.9406564584124654e-324, 0.1, 123456789012345678901234567890]")
    write("json", "strings.json", '["\\"\\\\\\/\\b\\f\\n\\r\\t", "\\u0000", "\u00e9\u20ac\U0001F600", ""]')
    write("json", "nested.json", "[" * 64 + "]" * 64)
    write("json", "scalar.json", '"just a string"')
    write("json", "header.json", st_file(ALL, metadata={"format": "pt"}, pad_to=1)[0][8:].decode())
    # json: invalid documents
    write("json", "bad_trailing_comma.json", "[1, 2,]")
    write("json", "bad_duplicate.json", '{"a": 1, "\\u0061": 2}')
    write("json", "bad_surrogate.json", '"\\uD800"')
    write("json", "bad_utf8.json", b'"\xc0\x80"')
    write("json", "bad_leading_zero.json", "[01]")
    write("json", "bad_too_deep.json", "[" * 65 + "]" * 65)
    write("json", "bad_garbage.json", "{} x")


if __name__ == "__main__":
    main()

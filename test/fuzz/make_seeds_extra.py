#!/usr/bin/env python3
"""Write the seed corpora of fuzz_pack, fuzz_kernels and fuzz_quant (test/fuzz/corpus/{pack,
kernels,quant}/).

Standard library only; deterministic: re-running rewrites the same bytes (the directories are
emptied first). The packed seeds come from a packer written here from docs/FORMATS.md (it
reproduces the page's worked examples, which the script asserts). Each seed follows its
target's input layout, described at the top of test/fuzz/fuzz_<target>.c.

    python3 test/fuzz/make_seeds_extra.py
"""
import math
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
I2, TQ1, BITPLANE = 1, 2, 3


def reset(target):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        os.remove(os.path.join(d, name))


def write(target, name, data):
    with open(os.path.join(HERE, "corpus", target, name), "wb") as f:
        f.write(bytes(data))


class Rng:
    """xorshift32: the same numbers on every run."""

    def __init__(self, seed):
        self.s = seed or 1

    def next(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s

    def trits(self, n, zero_pct=30):
        return [0 if self.next() % 100 < zero_pct else (1 if self.next() & 1 else -1) for _ in range(n)]


# ---------------------------------------------------------------------------
# The formats (docs/FORMATS.md)
# ---------------------------------------------------------------------------

def row_bytes(f, cols):
    return {I2: -(-cols // 64) * 16, TQ1: -(-cols // 80) * 16, BITPLANE: -(-cols // 128) * 32}[f]


def pack_row(f, t, cols):
    rb = row_bytes(f, cols)
    out = bytearray(rb)
    if f == I2:
        for w in range(rb * 4):
            code = t[w] + 1 if w < cols else 1
            blk, wb = divmod(w, 64)
            lane, bit = wb % 8, 2 * (wb // 8)  # 16-bit lane w % 8, bits 2 * (w / 8)
            out[blk * 16 + 2 * lane + bit // 8] |= code << (bit % 8)
    elif f == TQ1:
        for blk in range(rb // 16):
            for j in range(16):
                v = 0
                for d in range(5):
                    w = blk * 80 + j + 16 * d
                    v = v * 3 + (t[w] + 1 if w < cols else 1)
                out[blk * 16 + j] = -(-v * 256 // 243)
    else:
        half = rb // 2
        for c in range(cols):
            if t[c] == 1:
                out[c // 8] |= 1 << (c % 8)
            elif t[c] == -1:
                out[half + c // 8] |= 1 << (c % 8)
    return bytes(out)


def pack(f, t, rows, cols):
    return b"".join(pack_row(f, t[r * cols:(r + 1) * cols], cols) for r in range(rows))


# The worked examples of docs/FORMATS.md: a 2 x 10 matrix in each format.
EXAMPLE = [1, -1, 0, 0, 1, 1, -1, 0, -1, 1] + [0] * 9 + [-1]
EXAMPLE_HEX = {
    I2: "52 55 58 55 55 55 55 55 56 55 56 55 54 55 55 55 55 55 51" + " 55" * 13,
    TQ1: "d5 2b 80 80 d5 d5 2b 80 2b d5 80 80 80 80 80 80" + " 80" * 9 + " 2b" + " 80" * 6,
    BITPLANE: "31 02" + " 00" * 14 + " 42 01" + " 00" * 14 + " 00" * 16 + " 00 02" + " 00" * 14,
}
for _f, _hex in EXAMPLE_HEX.items():
    assert pack(_f, EXAMPLE, 2, 10) == bytes.fromhex(_hex), _f


# ---------------------------------------------------------------------------
# fuzz_pack: fsel rsel cols(u16) flags | body
# ---------------------------------------------------------------------------

def pack_header(f, rows, cols, flags=0, fsel=None):
    rsel = rows - 1 if rows <= 4 else 192 + rows - 1
    assert 1 + rsel % (64 if rsel >= 192 else 4) == rows
    return bytes([f - 1 if fsel is None else fsel, rsel]) + struct.pack("<H", cols - 1) + bytes([flags])


def pack_seeds():
    reset("pack")
    rng = Rng(0x5EED)
    names = {I2: "i2", TQ1: "tq1", BITPLANE: "bitplane"}
    shapes = [(1, 1), (1, 63), (1, 64), (1, 65), (2, 79), (1, 80), (3, 81), (1, 127), (4, 128), (2, 129),
              (1, 600), (64, 3), (17, 33)]
    for f in (I2, TQ1, BITPLANE):
        n = names[f]
        write("pack", f"{n}_example_2x10.bin", pack_header(f, 2, 10) + pack(f, EXAMPLE, 2, 10))
        for i, (rows, cols) in enumerate(shapes):
            t = rng.trits(rows * cols, zero_pct=(0, 30, 90)[i % 3])
            write("pack", f"{n}_{rows}x{cols}.bin", pack_header(f, rows, cols, flags=i & 1) + pack(f, t, rows, cols))
        write("pack", f"{n}_zeros_1x40.bin", pack_header(f, 1, 40) + pack(f, [0] * 40, 1, 40))
        # one flaw each (the body no longer packs anything, or has the wrong length)
        good = bytearray(pack(f, rng.trits(80), 1, 80))
        write("pack", f"{n}_short.bin", pack_header(f, 1, 80) + good[:-1])
        write("pack", f"{n}_nan_scale.bin", pack_header(f, 3, 80, flags=0x0F) + bytes(good))
        write("pack", f"{n}_extra_row.bin", pack_header(f, 1, 80, flags=0x10) + bytes(good))
    z = pack(I2, [0] * 10, 1, 10)
    bad = bytearray(z)
    bad[3] = 0x57  # a code 3
    write("pack", "bad_i2_code3.bin", pack_header(I2, 1, 10) + bytes(bad))
    bad = bytearray(z)
    bad[2 * (60 % 8) + 60 // 32] ^= 3 << (2 * ((60 // 8) % 4))  # weight 60 (padding) -> code 2
    write("pack", "bad_i2_padding.bin", pack_header(I2, 1, 10) + bytes(bad))
    z = bytearray(pack(TQ1, [0] * 80, 1, 80))
    z[5] = 0x01  # one of the 13 bytes no digits encode
    write("pack", "bad_tq1_byte.bin", pack_header(TQ1, 1, 80) + bytes(z))
    z = bytearray(pack(TQ1, [0] * 10, 1, 10))
    z[12] = 0x2B  # digit 0 of byte 12 is weight 12 >= cols: padding that is not zero
    write("pack", "bad_tq1_padding.bin", pack_header(TQ1, 1, 10) + bytes(z))
    z = bytearray(32)
    z[0] = z[16] = 1  # column 0 in both planes
    write("pack", "bad_bitplane_overlap.bin", pack_header(BITPLANE, 1, 100) + bytes(z))
    z = bytearray(32)
    z[13] = 0x80  # bit 111 >= cols
    write("pack", "bad_bitplane_padding.bin", pack_header(BITPLANE, 1, 100) + bytes(z))
    for fsel in (250, 253, 255):
        write("pack", f"bad_format_{fsel}.bin", pack_header(I2, 2, 10, fsel=fsel) + bytes(32))
    write("pack", "header_only.bin", pack_header(I2, 1, 1))


# ---------------------------------------------------------------------------
# fuzz_kernels: fsel rsel cols(u16) bsel flags esel dsel | six slices
# ---------------------------------------------------------------------------

def kernel_header(f, rows, cols, batch, per_row=0, from_packed=0, no_xs=0, which=0, fail=0, big_sparse=0,
                  exact=1, e=0, sparse_trits=0):
    rsel = rows - 1 if rows <= 8 else 144 + rows - 1 if rows >= 17 else 216 + rows - 1
    assert 1 + rsel % (72 if rsel >= 160 else 8) == rows
    if cols <= 160:
        csel = cols - 1
    else:
        csel = 0x8000 + (cols - 1 - 0x8000 % 600) % 600
    assert 1 + csel % (600 if csel >= 0x8000 else 160) == cols
    bsel = (batch - 1) | per_row << 2 | from_packed << 3 | (3 if no_xs else 0) << 4
    flags = 240 + which if big_sparse else which + 3 * fail
    esel = (0 if exact else 0x80) | (e + 40)
    return bytes([f - 1, rsel]) + struct.pack("<H", csel) + bytes([bsel, flags, esel, sparse_trits])


def kernel_seeds():
    reset("kernels")
    rng = Rng(0xC0FFEE)
    shapes = [(1, 1), (1, 7), (3, 64), (5, 65), (2, 80), (8, 81), (4, 128), (67, 129), (1, 160), (2, 600),
              (72, 17)]
    names = {I2: "i2", TQ1: "tq1", BITPLANE: "bitplane"}
    for f in (I2, TQ1, BITPLANE):
        for i, (rows, cols) in enumerate(shapes):
            batch = 1 + i % 4
            h = kernel_header(f, rows, cols, batch, per_row=i & 1, from_packed=(i >> 1) & 1, no_xs=i % 5 == 4,
                              which=i % 3, fail=i % 4, exact=i % 3 != 2, e=(i * 7) % 64 - 40,
                              sparse_trits=i % 4 == 3)
            # a short body: the stream fills in the rest
            body = bytes(rng.next() & 255 for _ in range(6 * (i + 1)))
            write("kernels", f"{names[f]}_{rows}x{cols}_b{batch}.bin", h + body)
    # int8 extremes and all-ones bits: six slices of 64 bytes
    h = kernel_header(I2, 3, 64, 1)
    slices = [bytes([2]) * 64, bytes(64), bytes([0xFF]) * 64, bytes(64), bytes([0x80]) * 64, bytes([0x7F]) * 64]
    write("kernels", "i2_int8_extremes.bin", h + b"".join(slices))
    h = kernel_header(TQ1, 2, 40, 2)
    slices = [bytes([1]) * 80, bytes(80), bytes([0xFF]) * 80, bytes(80), bytes([0x80, 0x7F]) * 40, bytes(80)]
    write("kernels", "tq1_int8_extremes.bin", h + b"".join(slices))
    # scales at the float range's ends: FLT_MAX, the smallest subnormal, -0.0
    h = kernel_header(BITPLANE, 3, 130, 2, per_row=1, exact=0)
    scales = struct.pack("<3I", 0x7F7FFFFF, 0x00000001, 0x80000000)
    slices = [bytes([2]) * 48, scales + bytes(36), bytes(48), bytes(48), bytes(48), bytes([0xFF, 0x7F, 0x7F, 0x7F]) * 12]
    write("kernels", "bitplane_extreme_scales.bin", h + b"".join(slices))
    # more than 16383 indices in one sparse list
    write("kernels", "i2_big_sparse.bin", kernel_header(I2, 70, 33, 2, big_sparse=1))
    write("kernels", "tq1_big_sparse.bin", kernel_header(TQ1, 5, 300, 1, big_sparse=1))
    write("kernels", "header_only.bin", kernel_header(BITPLANE, 1, 1, 1))


# ---------------------------------------------------------------------------
# fuzz_quant: mode e alpha(4) band(8) shape flags | floats
# ---------------------------------------------------------------------------

def quant_header(mode, e=140, alpha=1.0, alpha_bits=None, band=0.1, band_bits=None, shape=0, flags=0,
                 poison=0):
    ab = struct.pack("<I", alpha_bits) if alpha_bits is not None else struct.pack("<f", alpha)
    bb = struct.pack("<Q", band_bits) if band_bits is not None else struct.pack("<d", band)
    return bytes([mode | (0x80 if poison else 0), e]) + ab + bb + bytes([shape, flags])


def f32(*xs):
    return struct.pack(f"<{len(xs)}f", *xs)


def u32(*xs):
    return struct.pack(f"<{len(xs)}I", *xs)


def quant_seeds():
    reset("quant")
    rng = Rng(0xAB5)
    uniform = [((rng.next() / 2 ** 31) - 1.0) for _ in range(96)]
    NAN, INF, NINF, QNAN_NEG = 0x7FC00000, 0x7F800000, 0xFF800000, 0xFFC00001
    # shape byte: rank s % 5; a valid split when (s / 5) % 4 != 3, else dimensions from the stream
    seeds = {
        "raw_uniform_2x48": (quant_header(0, shape=2), f32(*uniform)),
        "raw_uniform_4d": (quant_header(0, shape=4, flags=1), f32(*uniform)),
        "raw_nan": (quant_header(0, shape=2), f32(*uniform[:7]) + u32(NAN) + f32(*uniform[8:16])),
        "raw_inf": (quant_header(0, shape=7), u32(INF, NINF) + f32(*uniform[:14])),
        "raw_neg_nan": (quant_header(0, shape=2), u32(QNAN_NEG) + f32(1.0, 2.0, 3.0)),
        "raw_signed_zeros": (quant_header(0, shape=2), u32(*([0x80000000, 0] * 8))),
        "raw_zero_tensor": (quant_header(0, shape=2, flags=1), f32(*[0.0] * 12)),
        "raw_single": (quant_header(0, shape=1), f32(-0.25)),
        "raw_subnormals": (quant_header(0, shape=2), u32(*[1 + 37 * i for i in range(16)])),
        "raw_flt_max": (quant_header(1, shape=2), u32(*([0x7F7FFFFF, 0xFF7FFFFF, 0x7F7FFFFE] * 6))),
        "sanitized_nan_bits": (quant_header(1, shape=3), u32(*[NAN, INF, NINF, 0x3F800000] * 4)),
        "ints_ties": (quant_header(2, e=140, shape=2), bytes([1, 3, 1, 3, 0xFF, 0xFD, 0, 2] * 4)),
        "ints_ties_lsq": (quant_header(2, e=140, alpha=2.0, shape=7), bytes([1, 3, 5, 7, 0xFF, 0xFB, 2, 6] * 4)),
        "ints_tiny": (quant_header(2, e=0, shape=2), bytes(range(1, 33))),
        "ints_huge": (quant_header(2, e=255, shape=2), bytes([0x7F, 0x81, 1, 0] * 8)),
        "window_subnormal": (quant_header(3, e=0, shape=2), f32(*uniform[:32])),
        "window_one": (quant_header(3, e=124, shape=3), f32(*uniform[:48])),
        "window_huge": (quant_header(3, e=247, shape=2), f32(*uniform[:32])),
        "edges": (quant_header(4, shape=2, flags=1), f32(*uniform[:64])),
        "edges_4d": (quant_header(4, shape=9, flags=3, band=0.0), f32(*uniform[:60])),
        "poisoned": (quant_header(1, shape=2, poison=1), f32(*uniform[:24])),
        "empty": (quant_header(0, shape=2), b""),
        "short_header": (b"\x00\x01\x02", b""),
        # LSQ scales that are no scale, and bands that are no band
        "alpha_nan": (quant_header(1, alpha_bits=NAN, shape=2), f32(*uniform[:16])),
        "alpha_inf": (quant_header(1, alpha_bits=INF, shape=2), f32(*uniform[:16])),
        "alpha_zero": (quant_header(1, alpha=0.0, shape=2), f32(*uniform[:16])),
        "alpha_neg_zero": (quant_header(1, alpha_bits=0x80000000, shape=2), f32(*uniform[:16])),
        "alpha_negative": (quant_header(1, alpha=-0.5, shape=2), f32(*uniform[:16])),
        "alpha_subnormal": (quant_header(1, alpha_bits=1, shape=2), f32(*uniform[:16])),
        "alpha_flt_max": (quant_header(1, alpha_bits=0x7F7FFFFF, shape=2), f32(*uniform[:16])),
        "band_zero": (quant_header(1, band=0.0, shape=2), f32(*uniform[:16])),
        "band_half": (quant_header(1, band=0.5, shape=2), f32(*uniform[:16])),
        "band_wide": (quant_header(1, band=0.6, shape=2), f32(*uniform[:16])),
        "band_neg_zero": (quant_header(1, band_bits=0x8000000000000000, shape=2), f32(*uniform[:16])),
        "band_negative": (quant_header(1, band=-1e-3, shape=2), f32(*uniform[:16])),
        "band_nan": (quant_header(1, band=math.nan, shape=2), f32(*uniform[:16])),
        "band_inf": (quant_header(1, band=math.inf, shape=2), f32(*uniform[:16])),
        "band_huge": (quant_header(1, band=1e300, shape=2), f32(*uniform[:16])),
        "band_subnormal": (quant_header(1, band_bits=1, shape=2), f32(*uniform[:16])),
        # shapes: rank 0 and 1, and dimensions from the stream
        "shape_rank0": (quant_header(1, shape=0), f32(*uniform[:8])),
        "shape_rank1": (quant_header(1, shape=1), f32(*uniform[:8])),
        "shape_raw2": (quant_header(1, shape=17), f32(*uniform[:8])),
        "shape_raw3": (quant_header(1, shape=18), f32(*uniform[:8])),
        "shape_raw4": (quant_header(1, shape=19), f32(*uniform[:8])),
    }
    for name, (head, body) in seeds.items():
        write("quant", name + ".bin", head + body)


if __name__ == "__main__":
    pack_seeds()
    kernel_seeds()
    quant_seeds()

/* formats.h — the bit addressing of the packed formats, written once.
 *
 * Everything that reads or writes a packed byte by hand (the packer, the validating unpacker, the
 * SIMD decoders, the kernels' scalar fallbacks, the column-major copy) goes through these
 * helpers; the layouts themselves are described in src/formats.c and docs/FORMATS.md. */
#ifndef TL_FORMATS_H
#define TL_FORMATS_H

#include <stdint.h>

/* i2: blocks of 64 weights in 16 bytes, eight little-endian 16-bit lanes; weight w (0..63) of a
 * block is field w / 8 (bits 2 * (w / 8)) of lane w % 8. In bytes: byte 2 * (w % 8) + w / 32,
 * bits 2 * ((w / 8) % 4). Code = trit + 1 (3 is invalid). */
#define TL__I2_BLOCK_WEIGHTS 64u
#define TL__I2_ZERO_BYTE 0x55u /* four zero trits (code 1) */
static inline unsigned tl__i2_byte(unsigned w) { return 2u * (w % 8u) + w / 32u; }
static inline unsigned tl__i2_shift(unsigned w) { return 2u * ((w / 8u) % 4u); }
static inline unsigned tl__i2_code(const uint8_t *block, unsigned w) {
    return (block[tl__i2_byte(w)] >> tl__i2_shift(w)) & 3u;
}
/* Overwrite the code of weight w (the block must hold some code there already). */
static inline void tl__i2_set(uint8_t *block, unsigned w, unsigned code) {
    uint8_t *p = block + tl__i2_byte(w);
    unsigned sh = tl__i2_shift(w);
    *p = (uint8_t)((*p & ~(3u << sh)) | (code << sh));
}

/* tq1: a byte q holds 5 base-3 digits (digit 0 most significant) as the 8-bit fixed-point
 * fraction ceil(v * 256 / 243); digit k decodes with a multiply and a shift, no division. */
static inline unsigned tl__tq1_pow3(unsigned k) {
    static const uint8_t p[5] = {1, 3, 9, 27, 81};
    return p[k];
}
static inline unsigned tl__tq1_digit(unsigned q, unsigned k) {
    return (((q * tl__tq1_pow3(k)) & 255u) * 3u) >> 8;
}

#endif

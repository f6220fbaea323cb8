/* pack.c — packing, unpacking and sizing for every packed format, through the format table
 * (src/formats.c holds each format's byte layout and its row of the table). */
#include <stdlib.h>

#include "internal.h"

tl_status tl_format_row_bytes(tl_format f, size_t cols, size_t *bytes) {
    if (!bytes) return TL_ERR_NULL;
    if (cols == 0) return TL_ERR_EMPTY;
    if (cols > TL_MAX_ELEMENTS) return TL_ERR_OVERFLOW;
    const tl__format_traits *ft = tl__format(f);
    if (!ft) return TL_ERR_FORMAT;
    *bytes = (cols + ft->block_weights - 1) / ft->block_weights * ft->block_bytes;
    return TL_OK;
}

tl_status tl_format_bytes(tl_format f, size_t rows, size_t cols, size_t *bytes) {
    if (!bytes) return TL_ERR_NULL;
    if (rows == 0) return TL_ERR_EMPTY;
    size_t rb;
    tl_status s = tl_format_row_bytes(f, cols, &rb);
    if (s) return s;
    if (rows > TL_MAX_ELEMENTS / cols || rows > TL_MAX_ELEMENTS / rb) return TL_ERR_OVERFLOW;
    *bytes = rows * rb;
    return TL_OK;
}

static void tl__pack_row(tl_format f, const int8_t *t, size_t cols, uint8_t *out, size_t rb) {
    tl__format(f)->pack_row(t, cols, out, rb);
}

static int tl__unpack_row(tl_format f, const uint8_t *in, size_t cols, size_t rb, int8_t *t) {
    return tl__format(f)->unpack_row(in, cols, rb, t);
}

/* ---------------------------------------------------------------------------
 * Whole matrices
 * ------------------------------------------------------------------------- */

static tl_status tl__check_trits(const int8_t *t, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (t[i] < -1 || t[i] > 1) return TL_ERR_TRIT;
    return TL_OK;
}

tl_status tl_pack(tl_format f, const int8_t *trits, size_t rows, size_t cols, uint8_t *out,
                  size_t out_bytes) {
    if (!trits || !out) return TL_ERR_NULL;
    size_t bytes, rb = 0;
    tl_status s = tl_format_bytes(f, rows, cols, &bytes);
    if (s) return s;
    if (out_bytes != bytes) return TL_ERR_SIZE;
    if ((s = tl__check_trits(trits, rows * cols))) return s;
    tl_format_row_bytes(f, cols, &rb);
    for (size_t r = 0; r < rows; r++) tl__pack_row(f, trits + r * cols, cols, out + r * rb, rb);
    return TL_OK;
}

tl_status tl_unpack(tl_format f, const uint8_t *in, size_t in_bytes, size_t rows, size_t cols,
                    int8_t *trits) {
    if (!trits || !in) return TL_ERR_NULL;
    size_t bytes, rb = 0;
    tl_status s = tl_format_bytes(f, rows, cols, &bytes);
    if (s) return s;
    if (in_bytes != bytes) return TL_ERR_SIZE;
    tl_format_row_bytes(f, cols, &rb);
    for (size_t r = 0; r < rows; r++)
        if (tl__unpack_row(f, in + r * rb, cols, rb, trits + r * cols)) return TL_ERR_FORMAT;
    return TL_OK;
}

/* Validate without decoding: the format's fast check, which refuses exactly what unpack_row
 * refuses (test_model.c compares the two on random bytes). Allocates nothing. */
tl_status tl__validate_packed(tl_format f, const uint8_t *in, size_t rows, size_t cols) {
    size_t rb;
    tl_status s = tl_format_row_bytes(f, cols, &rb);
    if (s) return s;
    return tl__format(f)->check_rows(in, rows, cols, rb) ? TL_ERR_FORMAT : TL_OK;
}

void tl__pack_rows(tl_format f, const int8_t *trits, size_t rows, size_t cols, uint8_t *out) {
    size_t rb = 0;
    tl_format_row_bytes(f, cols, &rb);
    for (size_t r = 0; r < rows; r++) tl__pack_row(f, trits + r * cols, cols, out + r * rb, rb);
}

/* matrix.c — the packed-matrix object: owns its packed bytes and per-row scales. */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

/* A matrix of a validated shape with no buffers yet. */
static tl_matrix *tl__matrix_shell(tl_format f, size_t rows, size_t cols) {
    tl_matrix *m = tl__calloc(1, sizeof *m);
    if (!m) return NULL;
    m->format = f, m->rows = rows, m->cols = cols;
    tl_format_row_bytes(f, cols, &m->row_bytes);
    m->traits = tl__format(f);
    m->row_weights = m->row_bytes / m->traits->block_bytes * m->traits->block_weights;
    return m;
}

/* ---------------------------------------------------------------------------
 * Tiles: how a matrix holds its packed bytes in memory
 *
 * Files hold the rows one after the other. A format whose tile_rows T is above 1 (i2: 4) is held
 * in tiles of T rows (the last tile may have fewer, n): block k of row t0 + i lies at
 * t0 * row_bytes + (k * n + i) * block_bytes. The dot products read the rows of a tile together,
 * and interleaved that is one stream instead of T streams a row apart: 1.3x faster at 4096 x 4096
 * in the SIMD128 build and 1.6-1.9x in the relaxed one, from cache or from memory. The bytes and
 * their number are the same: only their order changes, when a matrix is made and when its bytes
 * leave it (tl_matrix_packed, the file writers).
 * ------------------------------------------------------------------------- */

size_t tl__tile_n(const tl_matrix *m, size_t t0) {
    size_t T = m->traits->tile_rows;
    return m->rows - t0 < T ? m->rows - t0 : T;
}

const uint8_t *tl__tile_block(const tl_matrix *m, size_t r, size_t k) {
    size_t T = m->traits->tile_rows, t0 = r - r % T;
    return m->data + t0 * m->row_bytes + tl__tile_off(tl__tile_n(m, t0), r - t0, k) * m->traits->block_bytes;
}

/* n rows (one tile) from the file layout at plain into the tile's layout at tile */
static void tl__tile_put(uint8_t *tile, const uint8_t *plain, size_t n, size_t row_bytes, size_t bb) {
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < row_bytes / bb; k++) memcpy(tile + tl__tile_off(n, i, k) * bb, plain + i * row_bytes + k * bb, bb);
}

void tl__matrix_read_rows(const tl_matrix *m, size_t r0, size_t n, uint8_t *out) {
    if (m->traits->tile_rows == 1) {
        memcpy(out, m->data + r0 * m->row_bytes, n * m->row_bytes);
        return;
    }
    size_t bb = m->traits->block_bytes;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < m->row_bytes / bb; k++) memcpy(out + i * m->row_bytes + k * bb, tl__tile_block(m, r0 + i, k), bb);
}

/* Scratch for tl__matrix_tile_with: one tile of m */
static size_t tl__tile_scratch(const tl_matrix *m) { return m->traits->tile_rows * m->row_bytes; }

/* m's bytes, in the file layout, put into tiles in place (s: tl__tile_scratch(m) bytes). */
static void tl__matrix_tile_with(tl_matrix *m, uint8_t *s) {
    size_t T = m->traits->tile_rows, rb = m->row_bytes;
    for (size_t t0 = 0; t0 < m->rows && T > 1; t0 += T) {
        size_t n = tl__tile_n(m, t0);
        memcpy(s, m->data + t0 * rb, n * rb);
        tl__tile_put(m->data + t0 * rb, s, n, rb, m->traits->block_bytes);
    }
}

static tl_status tl__matrix_tile(tl_matrix *m) {
    if (m->traits->tile_rows == 1 || m->rows < 2) return TL_OK;
    uint8_t *s = tl__malloc(tl__tile_scratch(m));
    if (!s) return TL_ERR_NO_MEMORY;
    tl__matrix_tile_with(m, s);
    tl__free(s);
    return TL_OK;
}

size_t tl__matrix_tile_scratch(const tl_matrix *m) { return m->plain ? tl__tile_scratch(m) : 0; }

void tl__matrix_tile_plain(tl_matrix *m, uint8_t *scratch) {
    if (m->plain) tl__matrix_tile_with(m, scratch), m->plain = 0;
}

/* An empty matrix with its buffers allocated (data zeroed), shapes validated. */
static tl_status tl__matrix_new(tl_format f, size_t rows, size_t cols, tl_matrix **out) {
    if (!out) return TL_ERR_NULL;
    size_t bytes;
    tl_status s = tl_format_bytes(f, rows, cols, &bytes);
    if (s) return s;
    tl_matrix *m = tl__matrix_shell(f, rows, cols);
    if (!m) return TL_ERR_NO_MEMORY;
    m->data = tl__malloc(bytes);
    m->scales = tl__malloc(rows * sizeof *m->scales);
    if (!m->data || !m->scales) {
        tl_matrix_free(m);
        return TL_ERR_NO_MEMORY;
    }
    *out = m;
    return TL_OK;
}

static tl_status tl__set_scales(tl_matrix *m, const float *scales, size_t nscales) {
    if (!scales) return TL_ERR_NULL;
    if (nscales != 1 && nscales != m->rows) return TL_ERR_SIZE;
    for (size_t i = 0; i < nscales; i++)
        if (!isfinite(scales[i])) return TL_ERR_NON_FINITE;
    for (size_t r = 0; r < m->rows; r++) m->scales[r] = scales[nscales == 1 ? 0 : r];
    return TL_OK;
}

tl_status tl_matrix_from_trits(tl_format f, const int8_t *trits, size_t rows, size_t cols,
                               const float *scales, size_t nscales, tl_matrix **out) {
    if (!trits || !scales || !out) return TL_ERR_NULL;
    tl_matrix *m;
    tl_status s = tl__matrix_new(f, rows, cols, &m);
    if (s) return s;
    if ((s = tl__set_scales(m, scales, nscales)) ||
        (s = tl_pack(f, trits, rows, cols, m->data, rows * m->row_bytes)) || (s = tl__matrix_tile(m))) {
        tl_matrix_free(m);
        return s;
    }
    *out = m;
    return TL_OK;
}

tl_status tl_matrix_from_packed(tl_format f, const uint8_t *data, size_t bytes, size_t rows, size_t cols,
                                const float *scales, size_t nscales, tl_matrix **out) {
    if (!data || !scales || !out) return TL_ERR_NULL;
    tl_matrix *m;
    tl_status s = tl__matrix_new(f, rows, cols, &m);
    if (s) return s;
    if (bytes != rows * m->row_bytes) s = TL_ERR_SIZE;
    if (!s) s = tl__set_scales(m, scales, nscales);
    if (!s) s = tl__validate_packed(f, data, rows, cols);
    if (s) {
        tl_matrix_free(m);
        return s;
    }
    size_t T = m->traits->tile_rows;
    for (size_t t0 = 0; t0 < rows; t0 += T)
        tl__tile_put(m->data + t0 * m->row_bytes, data + t0 * m->row_bytes, tl__tile_n(m, t0), m->row_bytes,
                     m->traits->block_bytes);
    *out = m;
    return TL_OK;
}

tl_status tl__matrix_borrow(tl_format f, const uint8_t *data, size_t bytes, size_t rows, size_t cols,
                            float *scales, tl_matrix **out) {
    size_t want;
    tl_status s = tl_format_bytes(f, rows, cols, &want);
    if (s) return s;
    if (bytes != want) return TL_ERR_SIZE;
    if ((uintptr_t)data % 16) return TL_ERR_ARGUMENT;
    if ((s = tl__validate_packed(f, data, rows, cols)) || (s = tl__matrix_borrow_later(f, rows, cols, scales, out))) return s;
    (*out)->data = (uint8_t *)data;
    return TL_OK;
}

tl_status tl__matrix_borrow_later(tl_format f, size_t rows, size_t cols, float *scales, tl_matrix **out) {
    size_t want;
    tl_status s = tl_format_bytes(f, rows, cols, &want);
    if (s) return s;
    tl_matrix *m = tl__matrix_shell(f, rows, cols);
    if (!m) return TL_ERR_NO_MEMORY;
    m->borrowed = 1, m->plain = 1;
    m->scales = scales;
    *out = m;
    return TL_OK;
}

tl_status tl__matrix_copy(const tl_matrix *m, tl_matrix **out) {
    tl_matrix *c;
    tl_status s = tl__matrix_new(m->format, m->rows, m->cols, &c);
    if (s) return s;
    memcpy(c->data, m->data, m->rows * m->row_bytes); /* tiles and all */
    memcpy(c->scales, m->scales, m->rows * sizeof *m->scales);
    *out = c;
    return TL_OK;
}

tl_status tl__matrix_own(tl_matrix *m) {
    if (!m->borrowed) return TL_OK;
    size_t bytes = m->rows * m->row_bytes;
    uint8_t *d = tl__malloc(bytes);
    if (!d) return TL_ERR_NO_MEMORY;
    memcpy(d, m->data, bytes);
    m->data = d, m->borrowed = 0;
    return TL_OK;
}

tl_status tl_matrix_quantize(tl_format f, const float *w, size_t rows, size_t cols, int per_row,
                             tl_matrix **out) {
    if (!w || !out) return TL_ERR_NULL;
    tl_matrix *m;
    tl_status s = tl__matrix_new(f, rows, cols, &m);
    if (s) return s;
    /* Quantize a band of rows at a time into int8 scratch, then pack it: the scratch stays
     * small however large the matrix. Per tensor needs the one scale first. */
    float alpha = 0;
    if (!per_row && (s = tl_absmean_scale(w, rows * cols, &alpha))) goto fail;
    size_t band = cols >= 65536 ? 1 : 65536 / cols;
    int8_t *t = tl__malloc(band * cols);
    if (!t) {
        s = TL_ERR_NO_MEMORY;
        goto fail;
    }
    for (size_t r0 = 0; r0 < rows && !s; r0 += band) {
        size_t nr = rows - r0 < band ? rows - r0 : band;
        const float *wr = w + r0 * cols;
        if (per_row) {
            int64_t shape[2] = {(int64_t)nr, (int64_t)cols};
            s = tl_ternary_signs_per_row(wr, nr * cols, shape, 2, t, m->scales + r0);
        } else {
            s = tl_ternarize_lsq(wr, nr * cols, alpha, NULL, t);
            for (size_t r = 0; r < nr; r++) m->scales[r0 + r] = alpha;
        }
        if (!s) tl__pack_rows(f, t, nr, cols, m->data + r0 * m->row_bytes);
    }
    tl__free(t);
    if (!s) s = tl__matrix_tile(m);
    if (s) goto fail;
    *out = m;
    return TL_OK;
fail:
    tl_matrix_free(m);
    return s;
}

void tl_matrix_free(tl_matrix *m) {
    if (!m) return;
    if (!m->borrowed) tl__free(m->data);
    tl__free(m->scales);
    tl__free(m->colmajor);
    tl__free(m);
}

tl_status tl_matrix_set_column_copy(tl_matrix *m, int allow) {
    if (!m) return TL_ERR_NULL;
    if (allow != 0 && allow != 1) return tl__fail(TL_ERR_ARGUMENT, "allow is %d, not 0 or 1", allow);
    m->col_off = !allow;
    if (!allow) tl__free(m->colmajor), m->colmajor = NULL;
    return TL_OK;
}

tl_format tl_matrix_format(const tl_matrix *m) { return m ? m->format : (tl_format)0; }
size_t tl_matrix_rows(const tl_matrix *m) { return m ? m->rows : 0; }
size_t tl_matrix_cols(const tl_matrix *m) { return m ? m->cols : 0; }
tl_status tl_matrix_packed(const tl_matrix *m, uint8_t *out, size_t n) {
    if (!m || !out) return TL_ERR_NULL;
    if (n != m->rows * m->row_bytes) return TL_ERR_SIZE;
    tl__matrix_read_rows(m, 0, m->rows, out);
    return TL_OK;
}
size_t tl_matrix_data_bytes(const tl_matrix *m) { return m ? m->rows * m->row_bytes : 0; }
const float *tl_matrix_scales(const tl_matrix *m) { return m ? m->scales : NULL; }

tl_status tl_matrix_unpack(const tl_matrix *m, int8_t *trits, size_t n) {
    if (!m || !trits) return TL_ERR_NULL;
    if (n != m->rows * m->cols) return TL_ERR_SIZE;
    if (m->traits->tile_rows == 1) return tl_unpack(m->format, m->data, m->rows * m->row_bytes, m->rows, m->cols, trits);
    uint8_t *row = tl__malloc(m->row_bytes);
    if (!row) return TL_ERR_NO_MEMORY;
    tl_status s = TL_OK;
    for (size_t r = 0; r < m->rows && !s; r++) {
        tl__matrix_read_rows(m, r, 1, row);
        s = tl_unpack(m->format, row, m->row_bytes, 1, m->cols, trits + r * m->cols);
    }
    tl__free(row);
    return s;
}

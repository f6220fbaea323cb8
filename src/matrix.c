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
        (s = tl_pack(f, trits, rows, cols, m->data, rows * m->row_bytes))) {
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
    memcpy(m->data, data, bytes);
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
    if ((s = tl__validate_packed(f, data, rows, cols))) return s;
    tl_matrix *m = tl__matrix_shell(f, rows, cols);
    if (!m) return TL_ERR_NO_MEMORY;
    m->data = (uint8_t *)data, m->borrowed = 1;
    m->scales = scales;
    *out = m;
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

tl_format tl_matrix_format(const tl_matrix *m) { return m ? m->format : (tl_format)0; }
size_t tl_matrix_rows(const tl_matrix *m) { return m ? m->rows : 0; }
size_t tl_matrix_cols(const tl_matrix *m) { return m ? m->cols : 0; }
const uint8_t *tl_matrix_data(const tl_matrix *m) { return m ? m->data : NULL; }
size_t tl_matrix_data_bytes(const tl_matrix *m) { return m ? m->rows * m->row_bytes : 0; }
const float *tl_matrix_scales(const tl_matrix *m) { return m ? m->scales : NULL; }

tl_status tl_matrix_unpack(const tl_matrix *m, int8_t *trits, size_t n) {
    if (!m || !trits) return TL_ERR_NULL;
    if (n != m->rows * m->cols) return TL_ERR_SIZE;
    return tl_unpack(m->format, m->data, m->rows * m->row_bytes, m->rows, m->cols, trits);
}

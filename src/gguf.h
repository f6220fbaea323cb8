/* gguf.h — GGUF files (src/gguf.c owns the format: its reader and its writer). Internal: the
 * language model (src/lm.c) reads and writes models through these; no GGUF layout is known
 * anywhere else. */
#ifndef TL_GGUF_H
#define TL_GGUF_H

#include "internal.h"

/* The GGML tensor types read here (values as in GGUF files). */
enum {
    TL__GGML_F32 = 0,
    TL__GGML_F16 = 1,
    TL__GGML_BF16 = 30,
    TL__GGML_TQ1_0 = TL_GGUF_TQ1_0, /* 256 weights in 54 bytes: 5 base-3 digits per byte, an f16 scale */
    TL__GGML_TQ2_0 = TL_GGUF_TQ2_0, /* 256 weights in 66 bytes: 2-bit codes, an f16 scale */
    TL__GGML_I2_S = TL_GGUF_I2_S    /* bitnet.cpp: 2-bit codes of the whole tensor, one float32 scale */
};

/* A GGUF type's name ("TQ2_0"), or NULL for a type this file does not know. */
const char *tl__gguf_type_name(uint32_t type);

/* Nonzero when bytes start with the GGUF magic. */
int tl__gguf_is_file(const uint8_t *bytes, size_t len);

typedef struct tl__gguf tl__gguf;

/* Parse and validate a whole file (bytes must outlive the handle): version 2 or 3 (else
 * TL_ERR_VERSION), every length and count against the bytes left, every tensor's size in 64
 * bits from its type and dimensions, aligned offsets inside the data, no two tensors with one
 * name or overlapping. TL_ERR_PARSE (TL_ERR_DTYPE for a tensor type not known) with a detail. */
tl_status tl__gguf_open(const uint8_t *bytes, size_t len, tl__gguf **out);
void tl__gguf_free(tl__gguf *g);

/* Metadata by key: nonzero when present with a value of that kind (integers of any width for
 * get_int, which fails on a u64 past INT64_MAX; f32/f64 for get_float; a string's bytes, not
 * NUL-terminated). */
int tl__gguf_get_int(const tl__gguf *g, const char *key, int64_t *v);
int tl__gguf_get_float(const tl__gguf *g, const char *key, double *v);
int tl__gguf_get_str(const tl__gguf *g, const char *key, const char **s, size_t *len);

/* The tensor named name: its index, or TL_ERR_ARGUMENT when there is none. */
tl_status tl__gguf_find(const tl__gguf *g, const char *name, size_t *index);
/* Tensor i's type, rank and dimensions as the file lists them (ne[0] is the row length). */
void tl__gguf_tensor(const tl__gguf *g, size_t i, uint32_t *type, size_t *ndim, const uint64_t **ne);
/* Tensor i's bytes in the file (for tests that edit them) and their count. */
const uint8_t *tl__gguf_tensor_data(const tl__gguf *g, size_t i, size_t *nbytes);
/* Tensor i (n elements) as float32: F32, F16 and BF16 exactly; other types TL_ERR_DTYPE. */
tl_status tl__gguf_read_f32(const tl__gguf *g, size_t i, float *out, size_t n);
/* Tensor i, [rows, cols] (ne[1] = rows, ne[0] = cols), of a ternary type (TQ1_0, TQ2_0, I2_S):
 * its trits and one scale per row such that every weight is trit x scale, exactly the values
 * ggml dequantizes to. A negative block scale flips the block's trits; a zero one makes them 0;
 * a row of only zero trits gets scale 1. TL_ERR_FORMAT when a code is no trit (a 2-bit 3), or
 * when the blocks of one row carry different nonzero scales (tilelli keeps one per row);
 * TL_ERR_NON_FINITE for a scale that is NaN or infinite; TL_ERR_DTYPE for another type. */
tl_status tl__gguf_read_ternary(const tl__gguf *g, size_t i, size_t rows, size_t cols, int8_t *trits,
                                float *scales);

/* The writer: metadata entries and tensors, in this order. */
enum {
    TL__GGUF_U32 = 4,
    TL__GGUF_I32 = 5,
    TL__GGUF_F32 = 6,
    TL__GGUF_BOOL = 7,
    TL__GGUF_STRING = 8,
    TL__GGUF_ARRAY = 9
};
typedef struct {
    const char *key;
    uint32_t type; /* TL__GGUF_U32, F32, BOOL, STRING, or ARRAY (of strings, f32 or i32) */
    uint64_t u;    /* U32, BOOL */
    double f;      /* F32 */
    const char *s; /* STRING */
    /* ARRAY: n items of type item (STRING: at(i) gives item i, NUL-terminated; F32 / I32: the
     * number fi(i)) */
    uint32_t item;
    size_t n;
    const char *(*at)(size_t i, char *buf, size_t cap);
    double (*fi)(size_t i);
} tl__gguf_kv;
typedef struct {
    const char *name;
    uint32_t type;       /* F32, F16 (from f, rounded to nearest even), TQ1_0, TQ2_0, I2_S (from m) */
    size_t ndim;         /* 1 or 2 */
    uint64_t rows, cols; /* ndim 1: cols values (rows 1) */
    const float *f;
    const uint16_t *h; /* F16: the bits as they are (instead of f) */
    const int8_t *q;   /* F32: q[k] x qs[row] (instead of f) */
    const float *qs;
    const tl_matrix *m; /* rows x cols; the block scale is the row's scale (f16 for TQ1_0/TQ2_0);
                           I2_S needs one scale for every row */
} tl__gguf_tensor_out;
/* The file in *out (tl__malloc'ed), *len bytes: GGUF v3, alignment 32. TL_ERR_ARGUMENT for a
 * tensor whose shape its type cannot hold (TQ: cols a multiple of 256; I2_S: rows x cols of 128),
 * TL_ERR_FORMAT for an I2_S matrix whose rows have different scales. */
tl_status tl__gguf_write(const tl__gguf_kv *kv, size_t nkv, const tl__gguf_tensor_out *t, size_t nt,
                         uint8_t **out, size_t *len);

#endif

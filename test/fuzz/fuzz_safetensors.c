/* fuzz_safetensors.c — libFuzzer target for the safetensors reader (src/safetensors.c).
 *
 * Each input is opened twice: as a whole file, and (to reach the header's semantics without
 * having to guess its length prefix) rebuilt as a file whose header is the input up to its first
 * NUL byte and whose data is the rest. Whatever happens: the status is OK, PARSE, DTYPE or
 * OVERFLOW, and nothing is held afterwards. A file that opens must keep every promise of
 * tilelli.h: every tensor's bytes inside the data region, no two non-empty tensors sharing a
 * byte, nbytes = product of the shape x dtype size within TL_MAX_ELEMENTS, find(name) = its
 * index, read_f32 reproducing the bytes (F32 and BF16 bit for bit), metadata readable, indexes
 * past the counts refused; as a language model (lm_both below), the copying and the owned loads
 * agree. Then the open is repeated with one allocation failing (which one depends on the input):
 * NO_MEMORY or the first status, nothing held. Seeds include a tiny packed language model. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

static size_t dtype_size(tl_dtype d) {
    switch (d) {
    case TL_DTYPE_F64:
    case TL_DTYPE_I64:
    case TL_DTYPE_U64:
    case TL_DTYPE_C64:
        return 8;
    case TL_DTYPE_F32:
    case TL_DTYPE_I32:
    case TL_DTYPE_U32:
        return 4;
    case TL_DTYPE_F16:
    case TL_DTYPE_BF16:
    case TL_DTYPE_I16:
    case TL_DTYPE_U16:
        return 2;
    case TL_DTYPE_I8:
    case TL_DTYPE_U8:
    case TL_DTYPE_BOOL:
    case TL_DTYPE_F8_E4M3:
    case TL_DTYPE_F8_E5M2:
    case TL_DTYPE_F8_E8M0:
        return 1;
    }
    REQUIRE(0);
    return 0;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; k--) v = v << 8 | p[k];
    return v;
}

/* An F8 byte's value from its fields (independent of the library's bit manipulation). */
static double f8_value(unsigned b, int ebits, int bias) {
    int mbits = 7 - ebits;
    unsigned e = b >> mbits & ((1u << ebits) - 1), m = b & ((1u << mbits) - 1);
    double v =
        e ? ldexp((double)((1u << mbits) + m), (int)e - bias - mbits) : ldexp((double)m, 1 - bias - mbits);
    return b & 0x80 ? -v : v;
}

static void check_open(const tl_safetensors *st, const uint8_t *file, size_t len) {
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = hl << 8 | file[k];
    REQUIRE(len >= 8 && hl <= len - 8);
    const uint8_t *region = file + 8 + hl;
    size_t region_len = len - 8 - (size_t)hl, n = tl_safetensors_count(st);
    const uint8_t **begin = malloc((n ? n : 1) * sizeof *begin);
    size_t *bytes = malloc((n ? n : 1) * sizeof *bytes);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        size_t name_len, ndim, nbytes, at = SIZE_MAX;
        tl_dtype dt;
        const int64_t *shape;
        const uint8_t *d;
        REQUIRE(tl_safetensors_tensor(st, i, &name, &name_len, &dt, &ndim, &shape, &d, &nbytes) == TL_OK);
        size_t count = 1;
        for (size_t k = 0; k < ndim; k++) {
            REQUIRE(shape[k] >= 0 && (uint64_t)shape[k] <= TL_MAX_ELEMENTS);
            count *= (size_t)shape[k];
            REQUIRE(count <= TL_MAX_ELEMENTS);
        }
        REQUIRE(nbytes == count * dtype_size(dt));
        REQUIRE(d >= region && (size_t)(d - region) <= region_len &&
                region_len - (size_t)(d - region) >= nbytes);
        REQUIRE(tl_safetensors_find(st, name, name_len, &at) == TL_OK && at == i);
        begin[i] = d, bytes[i] = nbytes;

        float *out = malloc((count ? count : 1) * sizeof *out);
        if (dt == TL_DTYPE_C64) {
            REQUIRE(tl_safetensors_read_f32(st, i, out, count) == TL_ERR_DTYPE);
            free(out);
            continue;
        }
        REQUIRE(tl_safetensors_read_f32(st, i, out, count) == TL_OK);
        REQUIRE(tl_safetensors_read_f32(st, i, out, count + 1) == TL_ERR_SIZE);
        for (size_t k = 0; k < count; k++) {
            uint32_t u = tl__f2u(out[k]), want;
            const uint8_t *e = d + k * dtype_size(dt);
            switch (dt) {
            case TL_DTYPE_F32:
                want = (uint32_t)d[4 * k] | (uint32_t)d[4 * k + 1] << 8 | (uint32_t)d[4 * k + 2] << 16 |
                       (uint32_t)d[4 * k + 3] << 24;
                REQUIRE(u == want);
                break;
            case TL_DTYPE_BF16:
                want = ((uint32_t)d[2 * k] | (uint32_t)d[2 * k + 1] << 8) << 16;
                REQUIRE(u == want);
                break;
            case TL_DTYPE_F16: {
                /* finite halves widen to the same value; inf/NaN stay inf/NaN */
                unsigned h = d[2 * k] | d[2 * k + 1] << 8, ex = h >> 10 & 31, m = h & 1023;
                if (ex == 31)
                    REQUIRE(m ? isnan(out[k]) : isinf(out[k]));
                else
                    REQUIRE((double)out[k] ==
                            (h >> 15 ? -1 : 1) * (ex ? ldexp(1024 + m, (int)ex - 25) : ldexp(m, -24)));
                break;
            }
            case TL_DTYPE_F8_E5M2:
                if ((e[0] & 0x7C) == 0x7C)
                    REQUIRE(e[0] & 3 ? isnan(out[k]) : isinf(out[k]));
                else
                    REQUIRE((double)out[k] == f8_value(e[0], 5, 15));
                break;
            case TL_DTYPE_F8_E4M3:
                if ((e[0] & 0x7F) == 0x7F)
                    REQUIRE(isnan(out[k]));
                else
                    REQUIRE((double)out[k] == f8_value(e[0], 4, 7));
                break;
            case TL_DTYPE_F8_E8M0:
                if (e[0] == 0xFF)
                    REQUIRE(isnan(out[k]));
                else
                    REQUIRE((double)out[k] == ldexp(1.0, (int)e[0] - 127));
                break;
            case TL_DTYPE_F64: {
                uint64_t b = le(e, 8);
                double v;
                memcpy(&v, &b, 8);
                if (isnan(v))
                    REQUIRE(isnan(out[k]));
                else if (fabs(v) <= FLT_MAX)
                    REQUIRE(out[k] == (float)v);
                else
                    REQUIRE(fabs((double)out[k]) >= FLT_MAX && !!signbit(out[k]) == !!signbit(v));
                break;
            }
            case TL_DTYPE_I8:
                REQUIRE(out[k] == (float)(d[k] < 128 ? (int)d[k] : (int)d[k] - 256));
                break;
            case TL_DTYPE_U8:
                REQUIRE(out[k] == (float)d[k]);
                break;
            case TL_DTYPE_BOOL:
                REQUIRE(out[k] == (d[k] ? 1.0f : 0.0f));
                break;
            case TL_DTYPE_I16:
                REQUIRE(out[k] == (float)(int16_t)(uint16_t)le(e, 2));
                break;
            case TL_DTYPE_U16:
                REQUIRE(out[k] == (float)le(e, 2));
                break;
            case TL_DTYPE_I32:
                REQUIRE(out[k] == (float)(int32_t)(uint32_t)le(e, 4));
                break;
            case TL_DTYPE_U32:
                REQUIRE(out[k] == (float)le(e, 4));
                break;
            case TL_DTYPE_I64:
                REQUIRE(out[k] == (float)(int64_t)le(e, 8));
                break;
            case TL_DTYPE_U64:
                REQUIRE(out[k] == (float)le(e, 8));
                break;
            case TL_DTYPE_C64:
                REQUIRE(0);
                break;
            }
        }
        free(out);
    }
    /* no byte in two tensors (empty tensors hold no byte) */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (bytes[i] && bytes[j])
                REQUIRE(begin[i] + bytes[i] <= begin[j] || begin[j] + bytes[j] <= begin[i]);
    free(begin);
    free(bytes);
    REQUIRE(tl_safetensors_tensor(st, n, NULL, NULL, NULL, NULL, NULL, NULL, NULL) == TL_ERR_ARGUMENT);
    for (size_t j = 0; j < tl_safetensors_metadata_count(st); j++) {
        const char *key, *value;
        size_t kl, vl;
        REQUIRE(tl_safetensors_metadata(st, j, &key, &kl, &value, &vl) == TL_OK && key && value);
        (void)kl, (void)vl;
    }
    REQUIRE(tl_safetensors_metadata(st, tl_safetensors_metadata_count(st), NULL, NULL, NULL, NULL) ==
            TL_ERR_ARGUMENT);
}

/* The file as a language model (src/lm.c), with the config its metadata's "config" holds (a
 * packed file, tl_lm_save's, has it there; the Hugging Face seeds carry theirs there for this
 * fuzzer; other files stop at "no config"), loaded by tl_lm_load from st and by tl_lm_load_owned
 * from a copy in memory of tl_alloc, which uses the projections and tables where they lie (a
 * Hugging Face checkpoint's rewritten there): the same status, a documented one, and when they
 * load the same logits bit for bit; the copy is the model's on success, the caller's on failure. */
static void lm_both(const tl_safetensors *st, const uint8_t *file, size_t len) {
    tl_lm *a = NULL, *b = NULL;
    const char *cfg = NULL;
    size_t cl = 0;
    for (size_t j = 0; j < tl_safetensors_metadata_count(st); j++) {
        const char *k, *v;
        size_t kl, vl;
        if (tl_safetensors_metadata(st, j, &k, &kl, &v, &vl) == TL_OK && kl == 6 && !memcmp(k, "config", 6)) cfg = v, cl = vl;
    }
    tl_status s = tl_lm_load(cfg, cl, st, TL_FORMAT_I2, 4, &a);
    REQUIRE(s == TL_OK || s == TL_ERR_PARSE || s == TL_ERR_DTYPE || s == TL_ERR_SHAPE || s == TL_ERR_FORMAT ||
            s == TL_ERR_NON_FINITE || s == TL_ERR_ALPHA || s == TL_ERR_OVERFLOW || s == TL_ERR_SIZE);
    REQUIRE(!s == !!a);
    uint8_t *copy = tl_alloc(len);
    if (copy) {
        memcpy(copy, file, len);
        /* the config lies in the file: a copy, since the owned load may rewrite the file */
        char *c2 = cl ? malloc(cl) : NULL;
        if (c2) memcpy(c2, cfg, cl);
        tl_status s2 = tl_lm_load_owned(c2, c2 ? cl : 0, copy, len, TL_FORMAT_I2, 4, &b);
        free(c2);
        REQUIRE(s2 == s);
        if (s2) tl_free(copy);
    }
    if (a && b) {
        size_t V = tl_lm_vocab_size(a);
        uint32_t tok[2] = {0, (uint32_t)(V - 1)};
        float *la = malloc(2 * V * sizeof *la), *lb = malloc(2 * V * sizeof *lb);
        tl_status ra = tl_lm_forward(a, tok, 2, 1, la, 2 * V), rb = tl_lm_forward(b, tok, 2, 1, lb, 2 * V);
        REQUIRE(ra == rb && (ra != TL_OK || !memcmp(la, lb, 2 * V * sizeof *la)));
        free(la), free(lb);
    }
    tl_lm_free(a), tl_lm_free(b);
}

static void one_file(const uint8_t *file, size_t len) {
    tl_safetensors *st = NULL;
    tl_status s = tl_safetensors_open(file, len, &st);
    REQUIRE(s == TL_OK || s == TL_ERR_PARSE || s == TL_ERR_DTYPE || s == TL_ERR_OVERFLOW);
    REQUIRE((s == TL_OK) == (st != NULL));
    if (st) check_open(st, file, len), lm_both(st, file, len);
    tl_safetensors_free(st);
    REQUIRE(tl_mem_live_blocks() == 0 && tl_mem_live_bytes() == 0);

    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ file[i]) * 16777619u;
    st = NULL;
    tl_mem_fail_after(1 + h % 8);
    tl_status s2 = tl_safetensors_open(file, len, &st);
    tl_mem_fail_after(0);
    REQUIRE(s2 == s || s2 == TL_ERR_NO_MEMORY);
    REQUIRE((s2 == TL_OK) == (st != NULL));
    tl_safetensors_free(st);
    REQUIRE(tl_mem_live_blocks() == 0 && tl_mem_live_bytes() == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* 1: the input is the file (an exact copy: libFuzzer's buffer is exact already) */
    one_file(data, size);
    /* 2: header = input up to the first NUL, data = the rest after it */
    const uint8_t *nul = memchr(data, 0, size);
    size_t hl = nul ? (size_t)(nul - data) : size, dl = nul ? size - hl - 1 : 0;
    uint8_t *file = malloc(8 + hl + dl);
    for (int k = 0; k < 8; k++) file[k] = (uint8_t)((uint64_t)hl >> (8 * k));
    memcpy(file + 8, data, hl);
    if (dl) memcpy(file + 8 + hl, nul + 1, dl);
    one_file(file, 8 + hl + dl);
    free(file);
    return 0;
}

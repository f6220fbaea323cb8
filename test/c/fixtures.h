/* fixtures.h — reader for the golden quantization fixtures in test/fixtures/quant/ (made by
 * test/fixtures/gen_quant.py from the PyTorch reference; the format is documented at the top of
 * that script). C11, no dependencies beyond the standard library.
 *
 * Usage: fx_open() parses the manifest (small, metadata only); fx_case_load() reads one case's
 * arrays from its blob (or regenerates its input with the PRNG) and fx_case_unload() frees them,
 * so only one large case is in memory at a time.
 *
 * Files are read whole: with stdio natively, and with WASI calls (path_open on a preopened
 * directory) when compiled by Emscripten to standalone wasm, whose libc cannot open paths. */
#ifndef TL_TEST_FIXTURES_H
#define TL_TEST_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#define FX_MAX_DIMS 8
#define FX_MAX_LSQ 16
#define FX_MAX_DEADZONE 16
#define FX_NAME_MAX 96

/* ternary.deadzone_stats(w, band): the six doubles as the reference returned them, and the
 * counts behind the fractions (frac = count / n exactly). */
typedef struct fx_deadzone {
    double band;
    double alpha, frac_neg, frac_zero, frac_pos, frac_boundary, frac_zero_inner;
    uint64_t n_neg, n_zero, n_pos, n_boundary, n_zero_inner;
} fx_deadzone;

/* ternary.ternarize_lsq(w, alpha) with a given float32 alpha. */
typedef struct fx_lsq {
    float alpha;
    int8_t *trits; /* n trits q, loaded by fx_case_load */
    float *values; /* n forward values, or NULL when not stored (then values == q * alpha, zeros +0.0) */
    long trits_off, values_off; /* byte offsets in the blob; values_off -1 when not stored */
} fx_lsq;

typedef struct fx_case {
    char name[FX_NAME_MAX];
    char blob[FX_NAME_MAX];
    size_t n; /* element count: product of shape */
    size_t ndim;
    int64_t shape[FX_MAX_DIMS];
    size_t rows;         /* shape[0] when ndim >= 2, else 0 */
    char input_kind[16]; /* "f32" (stored) or a PRNG kind: "uniform", "irwin4", "cauchy" */
    uint32_t seed;       /* PRNG seed when input_kind is a PRNG kind */
    float alpha;         /* ternary.absmean_scale(w) */
    size_t n_lsq, n_deadzone;
    fx_lsq lsq[FX_MAX_LSQ];
    fx_deadzone deadzone[FX_MAX_DEADZONE];

    /* Filled by fx_case_load (NULL otherwise, and NULL when not stored). */
    float *input;      /* n */
    int8_t *trits;     /* n: ternary.ternary_signs(w) */
    float *values;     /* n: ternary.ternary_values(w); only when n <= 4096 */
    float *row_alphas; /* rows: ternary.absmean_scale_per_row(w) (ndim >= 2) */
    int8_t *row_trits; /* n: clamp(round(w / alpha_row), -1, 1) (ndim >= 2) */
    float *row_values; /* n: ternary.ternary_values_per_row(w); only when n <= 4096 */

    long off_input, off_trits, off_values, off_row_alphas, off_row_trits, off_row_values; /* -1: absent */
} fx_case;

typedef struct fx_set {
    char dir[1024];
    char torch_version[64];
    size_t n_cases;
    fx_case *cases;
    /* the blob last read by fx_case_load (cases are ordered by blob, so each is read once) */
    char blob_name[FX_NAME_MAX];
    unsigned char *blob_data;
    size_t blob_len;
} fx_set;

/* Parse dir/manifest.txt. Returns 0, or -1 with a message in err. */
int fx_open(const char *dir, fx_set *set, char *err, size_t errlen);
void fx_close(fx_set *set);

/* Load (or regenerate) a case's arrays. Returns 0, or -1 with a message in err (and nothing
 * left allocated). */
int fx_case_load(fx_set *set, fx_case *c, char *err, size_t errlen);
void fx_case_unload(fx_case *c);

/* The fixtures' xorshift32 inputs. Returns 0, or -1 for an unknown kind. */
int fx_prng_fill(const char *kind, uint32_t seed, float *out, size_t n);

#endif

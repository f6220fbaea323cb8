/* train.c — straight-through-estimator training of MLPs with ternary linear layers.
 *
 * One step: ternarize every layer's float32 shadow weights (the same quantizers as quant.c, so
 * the forward is the reference's), run the batch forward, take the loss, run backward, and hand
 * dL/dW_q straight to the shadow weights (STE), plus each quantizer's own rule for its scale.
 * The optimizer then updates weights, biases and LSQ scales exactly as torch.optim does.
 * Nothing is committed when the loss, a gradient or an updated parameter is not finite.
 * The products are dense float32 (three GEMM shapes below, SIMD128 where built with it). */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>

#include "internal.h"
#include "simd.h"

typedef struct {
    size_t in, out;
    float *w, *b, alpha;    /* shadow weights [out x in], bias [out], LSQ scale */
    float *gw, *gb, galpha; /* gradients of the last batch */
    float *mw, *mb, malpha; /* optimizer state: Adam first moment / SGD momentum buffer */
    float *vw, *vb, valpha; /* Adam second moment */
    float *weff;            /* the forward's weights: trits * scale (or w) */
    int8_t *q;              /* trits */
    float *scale;           /* per-row scale of weff (per tensor: all equal) */
    /* the optimizer step's new w, mw, vw, b, mb, vb (made at the first step): swapped in whole
     * when every value is finite */
    float *next[6];
} tl__dense;

struct tl_net {
    uint32_t nlayers;
    tl__dense *L;
    tl_activation act;
    tl_quantizer quant;
    tl_loss loss;
    tl_optimizer opt;
    float lr, beta1, beta2, eps, wd, momentum, tequila;
    tl_schedule schedule;
    uint32_t warmup, total, steps;
    /* per-batch buffers: activations of every layer (z before, a after the activation) */
    size_t cap_batch;
    float **z, **a, *dz, *da;
    float *beff; /* a layer's bias as the forward adds it (Tequila's included), max_width */
    size_t max_width;
};

#define TL__PARAMS(L) ((L)->in * (L)->out)

/* ---------------------------------------------------------------------------
 * Dense float32 products (row-major)
 * ------------------------------------------------------------------------- */

/* z[B x O] = x[B x I] . w[O x I]^T, outputs o0..o1 - 1 (o0 even): tiles of 4 inputs x 2 weight rows
 * share their loads. */
static void tl__gemm_nt_rows(size_t B, size_t O, size_t I, const float *x, const float *w, float *z, size_t o0,
                             size_t o1) {
    size_t o = o0;
#if TL_SIMD
    for (; o + 2 <= o1; o += 2) {
        const float *w0 = w + o * I, *w1 = w0 + I;
        size_t t = 0;
        for (; t + 4 <= B; t += 4) {
            const float *x0 = x + t * I, *x1 = x0 + I, *x2 = x1 + I, *x3 = x2 + I;
            v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
            size_t i = 0;
            for (; i + 4 <= I; i += 4) {
                v128_t u = wasm_v128_load(w0 + i), v = wasm_v128_load(w1 + i);
                v128_t y0 = wasm_v128_load(x0 + i), y1 = wasm_v128_load(x1 + i), y2 = wasm_v128_load(x2 + i),
                       y3 = wasm_v128_load(x3 + i);
                a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(y0, u)),
                c0 = wasm_f32x4_add(c0, wasm_f32x4_mul(y0, v));
                a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(y1, u)),
                c1 = wasm_f32x4_add(c1, wasm_f32x4_mul(y1, v));
                a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(y2, u)),
                c2 = wasm_f32x4_add(c2, wasm_f32x4_mul(y2, v));
                a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(y3, u)),
                c3 = wasm_f32x4_add(c3, wasm_f32x4_mul(y3, v));
            }
            float s[8][4];
            wasm_v128_store(s[0], a0), wasm_v128_store(s[1], a1), wasm_v128_store(s[2], a2),
                wasm_v128_store(s[3], a3);
            wasm_v128_store(s[4], c0), wasm_v128_store(s[5], c1), wasm_v128_store(s[6], c2),
                wasm_v128_store(s[7], c3);
            for (int k = 0; k < 4; k++) {
                float p = (s[k][0] + s[k][1]) + (s[k][2] + s[k][3]);
                float q = (s[k + 4][0] + s[k + 4][1]) + (s[k + 4][2] + s[k + 4][3]);
                for (size_t j = i; j < I; j++)
                    p += x[(t + k) * I + j] * w0[j], q += x[(t + k) * I + j] * w1[j];
                z[(t + k) * O + o] = p, z[(t + k) * O + o + 1] = q;
            }
        }
        for (; t < B; t++)
            for (size_t r = o; r < o + 2; r++) {
                float acc = 0;
                for (size_t i = 0; i < I; i++) acc += x[t * I + i] * w[r * I + i];
                z[t * O + r] = acc;
            }
    }
#endif
    for (; o < o1; o++)
        for (size_t t = 0; t < B; t++) {
            float acc = 0;
            for (size_t i = 0; i < I; i++) acc += x[t * I + i] * w[o * I + i];
            z[t * O + o] = acc;
        }
}

/* dx[B x I] = dz[B x O] . w[O x I], vectors t0..t1 - 1 */
static void tl__gemm_nn_rows(size_t B, size_t O, size_t I, const float *dz, const float *w, float *dx, size_t t0,
                             size_t t1) {
    (void)B;
    for (size_t t = t0; t < t1; t++) {
        tl__weighted_rows(dz + t * O, w, I, O, I, dx + t * I); /* ReLU zeros: most of dz after one */
    }
}

/* dw[O x I] = dz[B x O]^T . x[B x I], weight rows o0..o1 - 1 (o0 even): two weight rows at a time
 * share the loads of x. */
static void tl__gemm_tn_rows(size_t B, size_t O, size_t I, const float *dz, const float *x, float *dw, size_t o0,
                             size_t o1) {
    size_t o = o0;
#if TL_SIMD
    for (; o + 2 <= o1; o += 2) {
        float *d0 = dw + o * I, *d1 = d0 + I;
        size_t i = 0;
        for (; i + 16 <= I; i += 16) {
            v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
            for (size_t t = 0; t < B; t++) {
                float g0 = dz[t * O + o], g1 = dz[t * O + o + 1];
                if (g0 == 0.0f && g1 == 0.0f) continue;
                v128_t s0 = wasm_f32x4_splat(g0), s1 = wasm_f32x4_splat(g1);
                const float *xt = x + t * I + i;
                v128_t y0 = wasm_v128_load(xt), y1 = wasm_v128_load(xt + 4), y2 = wasm_v128_load(xt + 8),
                       y3 = wasm_v128_load(xt + 12);
                a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(s0, y0)),
                c0 = wasm_f32x4_add(c0, wasm_f32x4_mul(s1, y0));
                a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(s0, y1)),
                c1 = wasm_f32x4_add(c1, wasm_f32x4_mul(s1, y1));
                a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(s0, y2)),
                c2 = wasm_f32x4_add(c2, wasm_f32x4_mul(s1, y2));
                a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(s0, y3)),
                c3 = wasm_f32x4_add(c3, wasm_f32x4_mul(s1, y3));
            }
            wasm_v128_store(d0 + i, a0), wasm_v128_store(d0 + i + 4, a1);
            wasm_v128_store(d0 + i + 8, a2), wasm_v128_store(d0 + i + 12, a3);
            wasm_v128_store(d1 + i, c0), wasm_v128_store(d1 + i + 4, c1);
            wasm_v128_store(d1 + i + 8, c2), wasm_v128_store(d1 + i + 12, c3);
        }
        for (; i < I; i++)
            for (size_t r = o; r < o + 2; r++) {
                float acc = 0;
                for (size_t t = 0; t < B; t++) acc += dz[t * O + r] * x[t * I + i];
                dw[r * I + i] = acc;
            }
    }
#endif
    for (; o < o1; o++)
        for (size_t i = 0; i < I; i++) {
            float acc = 0;
            for (size_t t = 0; t < B; t++) acc += dz[t * O + o] * x[t * I + i];
            dw[o * I + i] = acc;
        }
}

/* The three products split over threads (threads.c): by output rows o in even-sized groups (the
 * pairs of the SIMD loops stay the same pairs, and so the same bits) for nt and tn, by vectors for
 * nn. Small products stay on the calling thread. A product may carry an epilogue: the work on its
 * outputs that follows it (bias and activation, bias gradients, the activation's derivative),
 * done by the task that wrote those rows, while they are in cache. */
typedef void (*tl__rows_fn)(size_t, size_t, size_t, const float *, const float *, float *, size_t, size_t);
typedef void (*tl__epi_fn)(const void *ctx, size_t r0, size_t r1);
typedef struct {
    tl__rows_fn rows;
    size_t B, O, I, n, chunk;
    const float *a, *b;
    float *c;
    tl__epi_fn epi;
    const void *epi_ctx;
} tl__gemm_job;

static void tl__gemm_task(void *ctx, size_t task, unsigned thread) {
    const tl__gemm_job *j = ctx;
    size_t r0, r1;
    (void)thread;
    tl__task_range(j->n, j->chunk, task, &r0, &r1);
    j->rows(j->B, j->O, j->I, j->a, j->b, j->c, r0, r1);
    if (j->epi) j->epi(j->epi_ctx, r0, r1);
}

/* n rows (o or t) of the product f, then epi (may be NULL) on them, in tasks of whole pairs: 4 per
 * thread */
static void tl__gemm_split(tl__rows_fn f, size_t B, size_t O, size_t I, const float *a, const float *b, float *c,
                           size_t n, tl__epi_fn epi, const void *epi_ctx) {
    size_t T = tl__threads_n(), chunk = n;
    if (T >= 2 && (uint64_t)B * O * I >= tl__par_min_work && n >= 4) {
        chunk = (n + 4 * T - 1) / (4 * T);
        chunk += chunk % 2;
    }
    tl__gemm_job j = {f, B, O, I, n, chunk, a, b, c, epi, epi_ctx};
    tl__parallel((n + chunk - 1) / chunk, tl__gemm_task, &j);
}

/* Items per task of elementwise work over n items: at least 16384 (4 tasks per thread), all n on
 * the calling thread under tl__par_min_work / 16 items; a multiple of 16, so that SIMD loops see the
 * same lanes (every such loop gives the same bits in any slicing). */
static size_t tl__ew_slice(size_t n) {
    size_t T = tl__threads_n();
    if (T < 2 || (uint64_t)n * 16 < tl__par_min_work || n < 32) return n ? n : 1;
    size_t p = (n + 4 * T - 1) / (4 * T);
    return p < 16384 && tl__par_min_work ? 16384 : (p + 15) & ~(size_t)15;
}

static void tl__gemm_nt(size_t B, size_t O, size_t I, const float *x, const float *w, float *z, tl__epi_fn epi,
                        const void *epi_ctx) {
    tl__gemm_split(tl__gemm_nt_rows, B, O, I, x, w, z, O, epi, epi_ctx);
}
static void tl__gemm_nn(size_t B, size_t O, size_t I, const float *dz, const float *w, float *dx, tl__epi_fn epi,
                        const void *epi_ctx) {
    tl__gemm_split(tl__gemm_nn_rows, B, O, I, dz, w, dx, B, epi, epi_ctx);
}
static void tl__gemm_tn(size_t B, size_t O, size_t I, const float *dz, const float *x, float *dw, tl__epi_fn epi,
                        const void *epi_ctx) {
    tl__gemm_split(tl__gemm_tn_rows, B, O, I, dz, x, dw, O, epi, epi_ctx);
}

/* ---------------------------------------------------------------------------
 * Creation and parameters
 * ------------------------------------------------------------------------- */

static uint64_t tl__splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [-bound, bound) */
static float tl__uniform(uint64_t *s, float bound) {
    double u = (double)(tl__splitmix(s) >> 11) * (1.0 / 9007199254740992.0);
    return (float)((2.0 * u - 1.0) * bound);
}

void tl_net_free(tl_net *net) {
    if (!net) return;
    for (uint32_t k = 0; k < net->nlayers && net->L; k++) {
        tl__dense *L = &net->L[k];
        tl__free(L->w), tl__free(L->b), tl__free(L->gw), tl__free(L->gb), tl__free(L->mw), tl__free(L->mb);
        tl__free(L->vw), tl__free(L->vb), tl__free(L->weff), tl__free(L->q), tl__free(L->scale);
        for (int i = 0; i < 6; i++) tl__free(L->next[i]);
    }
    for (uint32_t k = 0; net->z && net->a && k <= net->nlayers; k++) tl__free(net->z[k]), tl__free(net->a[k]);
    tl__free(net->z), tl__free(net->a), tl__free(net->dz), tl__free(net->da), tl__free(net->beff);
    tl__free(net->L);
    tl__free(net);
}

tl_status tl_net_create(uint32_t nlayers, const uint32_t *widths, tl_activation act, tl_quantizer quant,
                        uint64_t seed, tl_net **out) {
    if (!widths || !out) return TL_ERR_NULL;
    *out = NULL;
    if (nlayers == 0 || nlayers > 64) return tl__fail(TL_ERR_ARGUMENT, "%u layers: give 1 to 64", nlayers);
    if (act > TL_ACT_SILU || quant > TL_QUANT_LSQ_PAPER) return TL_ERR_ARGUMENT;
    for (uint32_t k = 0; k <= nlayers; k++)
        if (widths[k] == 0 || widths[k] > TL_MAX_WIDTH)
            return tl__fail(TL_ERR_ARGUMENT, "widths[%u] is %u: give 1 to %u", k, widths[k], (unsigned)TL_MAX_WIDTH);
    for (uint32_t k = 0; k < nlayers; k++) /* in 64 bits: the product may not fit size_t on wasm32 */
        if ((uint64_t)widths[k] * widths[k + 1] > TL_MAX_ELEMENTS)
            return tl__fail(TL_ERR_OVERFLOW, "layer %u has %u x %u weights, past 2^30 - 1", k, widths[k + 1], widths[k]);
    tl_net *net = tl__calloc(1, sizeof *net);
    if (!net) return TL_ERR_NO_MEMORY;
    net->nlayers = nlayers, net->act = act, net->quant = quant;
    net->loss = TL_LOSS_CROSS_ENTROPY, net->opt = TL_OPT_ADAM;
    net->lr = 1e-3f, net->beta1 = 0.9f, net->beta2 = 0.999f, net->eps = 1e-8f;
    net->L = tl__calloc(nlayers, sizeof *net->L);
    net->z = tl__calloc(nlayers + 1, sizeof *net->z);
    net->a = tl__calloc(nlayers + 1, sizeof *net->a);
    if (!net->L || !net->z || !net->a) goto oom;
    net->max_width = widths[0];
    for (uint32_t k = 1; k <= nlayers; k++) net->max_width = widths[k] > net->max_width ? widths[k] : net->max_width;
    if (!(net->beff = tl__malloc(net->max_width * 4))) goto oom;
    uint64_t s = seed;
    for (uint32_t k = 0; k < nlayers; k++) {
        tl__dense *L = &net->L[k];
        L->in = widths[k], L->out = widths[k + 1];
        size_t n = TL__PARAMS(L);
        L->w = tl__malloc(n * 4), L->gw = tl__calloc(n, 4), L->mw = tl__calloc(n, 4),
        L->vw = tl__calloc(n, 4);
        L->weff = tl__malloc(n * 4), L->q = tl__malloc(n);
        L->b = tl__malloc(L->out * 4), L->gb = tl__calloc(L->out, 4), L->mb = tl__calloc(L->out, 4);
        L->vb = tl__calloc(L->out, 4), L->scale = tl__malloc(L->out * 4);
        if (!L->w || !L->gw || !L->mw || !L->vw || !L->weff || !L->q || !L->b || !L->gb || !L->mb || !L->vb ||
            !L->scale)
            goto oom;
        float bound = 1.0f / sqrtf((float)L->in); /* kaiming_uniform(a = sqrt 5) and the bias rule */
        for (size_t i = 0; i < n; i++) L->w[i] = tl__uniform(&s, bound);
        for (size_t i = 0; i < L->out; i++) L->b[i] = tl__uniform(&s, bound);
        tl_absmean_scale(L->w, n, &L->alpha);
    }
    *out = net;
    return TL_OK;
oom:
    tl_net_free(net);
    return TL_ERR_NO_MEMORY;
}

tl_status tl_net_set_loss(tl_net *net, tl_loss loss) {
    if (!net) return TL_ERR_NULL;
    if (loss != TL_LOSS_CROSS_ENTROPY && loss != TL_LOSS_MSE) return TL_ERR_ARGUMENT;
    net->loss = loss;
    return TL_OK;
}

static void tl__reset_state(tl_net *net) {
    for (uint32_t k = 0; k < net->nlayers; k++) {
        tl__dense *L = &net->L[k];
        memset(L->mw, 0, TL__PARAMS(L) * 4), memset(L->vw, 0, TL__PARAMS(L) * 4);
        memset(L->mb, 0, L->out * 4), memset(L->vb, 0, L->out * 4);
        L->malpha = L->valpha = 0;
    }
    net->steps = 0;
}

tl_status tl_net_set_optimizer(tl_net *net, tl_optimizer opt, float lr, float beta1, float beta2, float eps,
                               float weight_decay, float momentum) {
    if (!net) return TL_ERR_NULL;
    if (opt < TL_OPT_ADAM || opt > TL_OPT_SGD) return TL_ERR_ARGUMENT;
    if (!(isfinite(lr) && lr >= 0 && beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1 && eps >= 0 &&
          isfinite(eps) && weight_decay >= 0 && isfinite(weight_decay) && momentum >= 0 && momentum < 1))
        return TL_ERR_ARGUMENT;
    net->opt = opt, net->lr = lr, net->beta1 = beta1, net->beta2 = beta2, net->eps = eps;
    net->wd = weight_decay, net->momentum = momentum;
    tl__reset_state(net);
    return TL_OK;
}

tl_status tl_net_set_schedule(tl_net *net, tl_schedule schedule, uint32_t warmup_steps,
                              uint32_t total_steps) {
    if (!net) return TL_ERR_NULL;
    if (schedule > TL_SCHED_COSINE || (schedule == TL_SCHED_COSINE && total_steps <= warmup_steps))
        return TL_ERR_ARGUMENT;
    net->schedule = schedule, net->warmup = warmup_steps, net->total = total_steps;
    return TL_OK;
}

tl_status tl_net_set_tequila(tl_net *net, float lambda) {
    if (!net) return TL_ERR_NULL;
    if (!(isfinite(lambda) && lambda >= 0)) return TL_ERR_ARGUMENT;
    if (lambda > 0 && net->quant == TL_QUANT_NONE) return TL_ERR_ARGUMENT;
    net->tequila = lambda;
    return TL_OK;
}

tl_status tl_net_set_layer(tl_net *net, uint32_t k, const float *weight, const float *bias, float alpha) {
    if (!net || !weight || !bias) return TL_ERR_NULL;
    if (k >= net->nlayers) return TL_ERR_ARGUMENT;
    tl__dense *L = &net->L[k];
    size_t n = TL__PARAMS(L);
    if (tl__first_non_finite(weight, n) != n || tl__first_non_finite(bias, L->out) != L->out)
        return TL_ERR_NON_FINITE;
    if ((net->quant == TL_QUANT_LSQ || net->quant == TL_QUANT_LSQ_PAPER) && !(isfinite(alpha) && alpha > 0))
        return TL_ERR_ALPHA; /* LearnableScale: initial must be > 0 */
    memcpy(L->w, weight, n * 4), memcpy(L->b, bias, L->out * 4);
    if (net->quant == TL_QUANT_LSQ || net->quant == TL_QUANT_LSQ_PAPER) L->alpha = alpha;
    return TL_OK;
}

tl_status tl_net_get_layer(const tl_net *net, uint32_t k, float *weight, float *bias, float *alpha) {
    if (!net) return TL_ERR_NULL;
    if (k >= net->nlayers) return TL_ERR_ARGUMENT;
    const tl__dense *L = &net->L[k];
    if (weight) memcpy(weight, L->w, TL__PARAMS(L) * 4);
    if (bias) memcpy(bias, L->b, L->out * 4);
    if (alpha) *alpha = L->alpha;
    return TL_OK;
}

tl_status tl_net_get_grads(const tl_net *net, uint32_t k, float *weight, float *bias, float *alpha) {
    if (!net) return TL_ERR_NULL;
    if (k >= net->nlayers) return TL_ERR_ARGUMENT;
    const tl__dense *L = &net->L[k];
    if (weight) memcpy(weight, L->gw, TL__PARAMS(L) * 4);
    if (bias) memcpy(bias, L->gb, L->out * 4);
    if (alpha) *alpha = L->galpha;
    return TL_OK;
}

uint32_t tl_net_steps(const tl_net *net) { return net ? net->steps : 0; }

float tl_net_lr(const tl_net *net) {
    if (!net) return 0;
    uint32_t s = net->steps;
    if (s < net->warmup) return net->lr * (float)(s + 1) / (float)net->warmup;
    if (net->schedule == TL_SCHED_COSINE) {
        double p = (double)(s - net->warmup) / (double)(net->total - net->warmup);
        if (p > 1) p = 1;
        return (float)(net->lr * 0.5 * (1.0 + cos(3.14159265358979323846 * p)));
    }
    return net->lr;
}

/* ---------------------------------------------------------------------------
 * Forward and backward
 * ------------------------------------------------------------------------- */

static float tl__act(tl_activation a, float x) {
    switch (a) {
    case TL_ACT_RELU:
        return x > 0 ? x : 0;
    case TL_ACT_GELU:
        return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case TL_ACT_SILU:
        return x / (1.0f + expf(-x));
    default:
        return x;
    }
}

static float tl__act_grad(tl_activation a, float x) {
    switch (a) {
    case TL_ACT_RELU:
        return x > 0 ? 1.0f : 0.0f;
    case TL_ACT_GELU:
        return 0.5f * (1.0f + erff(x * 0.70710678118654752f)) + x * 0.3989422804014327f * expf(-0.5f * x * x);
    case TL_ACT_SILU: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    default:
        return 1.0f;
    }
}

/* Rows r0..r1 - 1 of a layer's shadow weights ternarized with their scales (tl__quantize_into) */
typedef struct {
    const float *w, *scale;
    size_t in, out, rows_per;
    float *weff;
    int8_t *q;
} tl__tern_job;

static void tl__tern_task(void *ctx, size_t task, unsigned thread) {
    const tl__tern_job *j = ctx;
    size_t r0, r1;
    (void)thread;
    tl__task_range(j->out, j->rows_per, task, &r0, &r1);
    for (size_t r = r0; r < r1; r++)
        tl__ternarize(j->w + r * j->in, j->in, j->scale[r], j->weff ? j->weff + r * j->in : NULL, j->q + r * j->in);
}

/* The forward's weights of layer L from its shadow weights, as the quantizer says: weff (may be
 * NULL), trits q and per-row scales (not for TL_QUANT_NONE). The scales are the reference's
 * reductions, on the calling thread; the ternarizing is elementwise and split over threads
 * (the shadow weights are finite: set_layer and the optimizer step let no other value in). */
static tl_status tl__quantize_into(const tl_net *net, const tl__dense *L, float *weff, int8_t *q, float *scale) {
    size_t n = TL__PARAMS(L);
    tl_status s = TL_OK;
    tl_quantizer quant = net->quant;
    if (quant == TL_QUANT_NONE) {
        if (!q) { /* the float32 forward */
            if (weff) memcpy(weff, L->w, n * 4);
            return TL_OK;
        }
        quant = TL_QUANT_PER_TENSOR; /* trits of a float32 network: ternarized per tensor after training */
    }
    switch (quant) {
    case TL_QUANT_PER_TENSOR: {
        float a;
        if ((s = tl_absmean_scale(L->w, n, &a))) return s;
        for (size_t r = 0; r < L->out; r++) scale[r] = a;
        break;
    }
    case TL_QUANT_PER_ROW: {
        int64_t shape[2] = {(int64_t)L->out, (int64_t)L->in};
        if ((s = tl_absmean_scale_per_row(L->w, n, shape, 2, scale))) return s;
        break;
    }
    default: { /* LSQ: LearnableScale.value() = max(alpha, EPS) */
        float a = L->alpha > TL_EPS ? L->alpha : TL_EPS;
        for (size_t r = 0; r < L->out; r++) scale[r] = a;
        break;
    }
    }
    for (size_t r = 0; r < L->out; r++)
        if (!(isfinite(scale[r]) && scale[r] > 0.0f)) return TL_ERR_ALPHA;
    size_t per = tl__ew_slice(n);
    tl__tern_job j = {L->w, scale, L->in, L->out, per / L->in ? per / L->in : 1, weff, q};
    tl__parallel((L->out + j.rows_per - 1) / j.rows_per, tl__tern_task, &j);
    return TL_OK;
}

static tl_status tl__quantize_layer(const tl_net *net, tl__dense *L) {
    return tl__quantize_into(net, L, L->weff, net->quant == TL_QUANT_NONE ? NULL : L->q, L->scale);
}

static tl_status tl__ensure_batch(tl_net *net, size_t batch) {
    if (batch <= net->cap_batch) return TL_OK;
    for (uint32_t k = 0; k <= net->nlayers; k++) {
        tl__free(net->z[k]), tl__free(net->a[k]);
        net->z[k] = net->a[k] = NULL;
    }
    tl__free(net->dz), tl__free(net->da);
    net->dz = net->da = NULL;
    net->cap_batch = 0;
    for (uint32_t k = 0; k <= net->nlayers; k++) {
        size_t w = k == 0 ? net->L[0].in : net->L[k - 1].out;
        net->z[k] = tl__malloc(batch * w * 4), net->a[k] = tl__malloc(batch * w * 4);
        if (!net->z[k] || !net->a[k]) return TL_ERR_NO_MEMORY;
    }
    net->dz = tl__malloc(batch * net->max_width * 4), net->da = tl__malloc(batch * net->max_width * 4);
    if (!net->dz || !net->da) return TL_ERR_NO_MEMORY;
    net->cap_batch = batch;
    return TL_OK;
}

/* The forward's epilogue on outputs o0..o1 - 1 of every vector: z += the bias, a = act(z) (a = z
 * for the last layer). */
typedef struct {
    float *z, *a;
    const float *beff;
    size_t B, O;
    tl_activation act; /* TL_ACT_NONE: the last layer */
} tl__fwd_epi;

static void tl__fwd_epilogue(const void *ctx, size_t o0, size_t o1) {
    const tl__fwd_epi *e = ctx;
    for (size_t t = 0; t < e->B; t++) {
        float *z = e->z + t * e->O, *a = e->a + t * e->O;
        for (size_t o = o0; o < o1; o++) {
            float v = z[o] + e->beff[o];
            z[o] = v, a[o] = e->act == TL_ACT_NONE ? v : tl__act(e->act, v);
        }
    }
}

/* Forward: a[0] = x, z[k+1] = a[k] . weff^T + b (+ Tequila), a[k+1] = act(z[k+1]) except the last. */
static tl_status tl__forward(tl_net *net, const float *x, size_t batch) {
    tl_status s;
    if ((s = tl__ensure_batch(net, batch))) return s;
    memcpy(net->a[0], x, batch * net->L[0].in * 4);
    for (uint32_t k = 0; k < net->nlayers; k++) {
        tl__dense *L = &net->L[k];
        if ((s = tl__quantize_layer(net, L))) return s;
        for (size_t r = 0; r < L->out; r++) {
            float bias = L->b[r];
            if (net->tequila > 0) { /* lambda * the row's deadzone weights */
                float dzsum = 0;
                for (size_t c = 0; c < L->in; c++)
                    if (L->q[r * L->in + c] == 0) dzsum += L->w[r * L->in + c];
                bias += net->tequila * dzsum;
            }
            net->beff[r] = bias;
        }
        tl__fwd_epi e = {net->z[k + 1], net->a[k + 1], net->beff, batch, L->out,
                         k + 1 == net->nlayers ? TL_ACT_NONE : net->act};
        tl__gemm_nt(batch, L->out, L->in, net->a[k], L->weff, net->z[k + 1], tl__fwd_epilogue, &e);
    }
    return TL_OK;
}

/* Loss of the last layer's outputs, and dL/dz of the last layer into net->dz. */
static tl_status tl__loss(tl_net *net, size_t batch, const uint32_t *labels, const float *targets,
                          float *loss) {
    size_t O = net->L[net->nlayers - 1].out;
    const float *y = net->a[net->nlayers];
    double total = 0;
    if (net->loss == TL_LOSS_CROSS_ENTROPY) {
        if (!labels) return tl__fail(TL_ERR_ARGUMENT, "the loss is cross_entropy: give labels, not targets");
        for (size_t t = 0; t < batch; t++)
            if (labels[t] >= O)
                return tl__fail(TL_ERR_ARGUMENT, "labels[%zu] is %u, not a class in 0..%zu", t, labels[t], O - 1);
        for (size_t t = 0; t < batch; t++) {
            const float *row = y + t * O;
            float mx = row[0];
            for (size_t c = 1; c < O; c++) mx = row[c] > mx ? row[c] : mx;
            double sum = 0;
            for (size_t c = 0; c < O; c++) sum += exp((double)row[c] - mx);
            double lse = mx + log(sum);
            total += lse - row[labels[t]];
            for (size_t c = 0; c < O; c++) {
                float p = (float)(exp((double)row[c] - lse));
                net->dz[t * O + c] = (p - (c == labels[t] ? 1.0f : 0.0f)) / (float)batch;
            }
        }
        *loss = (float)(total / (double)batch);
    } else {
        if (!targets) return tl__fail(TL_ERR_ARGUMENT, "the loss is mse: give targets, not labels");
        size_t n = batch * O;
        if (tl__first_non_finite(targets, n) != n)
            return tl__fail(TL_ERR_NON_FINITE, "targets[%zu] is not finite", tl__first_non_finite(targets, n));
        for (size_t i = 0; i < n; i++) {
            float d = y[i] - targets[i];
            total += (double)d * d;
            net->dz[i] = 2.0f * d / (float)n;
        }
        *loss = (float)(total / (double)n);
    }
    return isfinite(*loss) ? TL_OK : TL_ERR_NON_FINITE;
}

static int tl__finite_all(const float *p, size_t n) { return tl__first_non_finite(p, n) == n; }

/* The weight gradient's epilogue on rows o0..o1 - 1: the bias gradients (sums over the batch, in
 * its order). */
typedef struct {
    const float *dz;
    float *gb;
    size_t B, O;
} tl__gb_epi;

static void tl__gb_epilogue(const void *ctx, size_t o0, size_t o1) {
    const tl__gb_epi *e = ctx;
    for (size_t o = o0; o < o1; o++) {
        float g = 0;
        for (size_t t = 0; t < e->B; t++) g += e->dz[t * e->O + o];
        e->gb[o] = g;
    }
}

/* dL/da's epilogue on vectors t0..t1 - 1: through the activation of the layer below (dL/dz). */
typedef struct {
    float *da;
    const float *z;
    size_t I;
    tl_activation act;
} tl__act_epi;

static void tl__act_epilogue(const void *ctx, size_t t0, size_t t1) {
    const tl__act_epi *e = ctx;
    for (size_t i = t0 * e->I; i < t1 * e->I; i++) e->da[i] *= tl__act_grad(e->act, e->z[i]);
}

/* Work over every layer's weights (and its biases, with the layer's first slice) in slices of
 * `per` weights, split over threads; each task leaves 1 in bad[task] when a value it checked is not
 * finite. */
#define TL__LAYER_TASKS_MAX (4 * 64 + 64) /* 4 per thread (64 at most), plus one per layer */
typedef struct {
    tl_net *net;
    const void *arg;
    size_t per, first[65]; /* first[k]: layer k's first task; first[nlayers]: the task count */
    uint8_t bad[TL__LAYER_TASKS_MAX];
} tl__layers_job;

/* Slices of at least tl__ew_slice's size, few enough for bad[]; returns the task count. */
static size_t tl__layers_plan(tl_net *net, tl__layers_job *j) {
    size_t total = 0;
    for (uint32_t k = 0; k < net->nlayers; k++) total += TL__PARAMS(&net->L[k]);
    j->per = tl__ew_slice(total);
    for (;; j->per *= 2) {
        j->first[0] = 0;
        for (uint32_t k = 0; k < net->nlayers; k++)
            j->first[k + 1] = j->first[k] + (TL__PARAMS(&net->L[k]) + j->per - 1) / j->per;
        if (j->first[net->nlayers] <= TL__LAYER_TASKS_MAX) break;
    }
    j->net = net;
    memset(j->bad, 0, sizeof j->bad);
    return j->first[net->nlayers];
}

/* The layer, and the first weight and count of task `task`'s slice. */
static tl__dense *tl__layers_slice(const tl__layers_job *j, size_t task, size_t *i0, size_t *cnt) {
    uint32_t k = 0;
    while (j->first[k + 1] <= task) k++;
    tl__dense *L = &j->net->L[k];
    size_t n = TL__PARAMS(L);
    *i0 = (task - j->first[k]) * j->per;
    *cnt = n - *i0 < j->per ? n - *i0 : j->per;
    return L;
}

static void tl__grads_finite_task(void *ctx, size_t task, unsigned thread) {
    tl__layers_job *j = ctx;
    size_t i0, cnt;
    const tl__dense *L = tl__layers_slice(j, task, &i0, &cnt);
    (void)thread;
    j->bad[task] = !tl__finite_all(L->gw + i0, cnt) || (i0 == 0 && !tl__finite_all(L->gb, L->out));
}

static int tl__any(const uint8_t *flags, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (flags[i]) return 1;
    return 0;
}

/* Backward from net->dz (dL/dz of the last layer): every layer's gradients. */
static tl_status tl__backward(tl_net *net, size_t batch) {
    for (uint32_t kk = net->nlayers; kk-- > 0;) {
        tl__dense *L = &net->L[kk];
        const float *x = net->a[kk];
        float *dz = net->dz;
        tl__gb_epi ge = {dz, L->gb, batch, L->out};
        tl__gemm_tn(batch, L->out, L->in, dz, x, L->gw, tl__gb_epilogue, &ge); /* dL/dweff, dL/db */
        size_t n = TL__PARAMS(L);
        /* the scale's gradient, and the STE's hand-off to the shadow weights */
        if (net->quant == TL_QUANT_LSQ || net->quant == TL_QUANT_LSQ_PAPER) {
            float a = L->alpha > TL_EPS ? L->alpha : TL_EPS;
            double ga = 0;
            if (net->quant == TL_QUANT_LSQ) { /* dout/dalpha = q, dout/dw = 1 */
                for (size_t i = 0; i < n; i++) ga += (double)L->gw[i] * L->q[i];
            } else { /* the paper: inside |v| <= 1: round(v) - v and dq/dw = 1; outside: sign(v) and 0 */
                for (size_t i = 0; i < n; i++) {
                    float v = L->w[i] / a;
                    if (fabsf(v) <= 1.0f) {
                        ga += (double)L->gw[i] * (rintf(v) - v);
                    } else {
                        ga += (double)L->gw[i] * (v > 0 ? 1.0 : -1.0);
                        L->gw[i] = 0.0f;
                    }
                }
                ga /= sqrt((double)n);
            }
            L->galpha = L->alpha >= TL_EPS ? (float)ga : 0.0f; /* clamp(min=EPS) passes where alpha >= EPS */
        }
        if (net->tequila > 0)
            for (size_t r = 0; r < L->out; r++)
                for (size_t c = 0; c < L->in; c++)
                    if (L->q[r * L->in + c] == 0) L->gw[r * L->in + c] += net->tequila * L->gb[r];
        if (kk == 0) break;
        /* dL/da of the layer below, then through its activation */
        float *da = net->da;
        tl__act_epi ae = {da, net->z[kk], L->in, net->act};
        tl__gemm_nn(batch, L->out, L->in, dz, L->weff, da, tl__act_epilogue, &ae);
        net->da = dz, net->dz = da; /* swap: dz now holds the lower layer's dL/dz */
    }
    for (uint32_t k = 0; k < net->nlayers; k++)
        if (!isfinite(net->L[k].galpha)) return TL_ERR_NON_FINITE;
    tl__layers_job j;
    size_t ntasks = tl__layers_plan(net, &j);
    tl__parallel(ntasks, tl__grads_finite_task, &j);
    return tl__any(j.bad, ntasks) ? TL_ERR_NON_FINITE : TL_OK;
}

static tl_status tl__check_batch(const tl_net *net, const float *x, size_t batch) {
    if (!net || !x) return TL_ERR_NULL;
    if (batch == 0) return TL_ERR_EMPTY;
    if (batch > TL_MAX_ELEMENTS / net->max_width) return TL_ERR_OVERFLOW;
    size_t n = batch * net->L[0].in;
    return tl__finite_all(x, n) ? TL_OK : TL_ERR_NON_FINITE;
}

tl_status tl_net_gradients(tl_net *net, const float *x, size_t batch, const uint32_t *labels,
                           const float *targets, float *loss) {
    tl_status s = tl__check_batch(net, x, batch);
    if (s) return s;
    float l = 0;
    if ((s = tl__forward(net, x, batch)) || (s = tl__loss(net, batch, labels, targets, &l)) ||
        (s = tl__backward(net, batch)))
        return s;
    if (loss) *loss = l;
    return TL_OK;
}

tl_status tl_net_forward(tl_net *net, const float *x, size_t batch, float *out) {
    tl_status s = tl__check_batch(net, x, batch);
    if (s) return s;
    if (!out) return TL_ERR_NULL;
    if ((s = tl__forward(net, x, batch))) return s;
    memcpy(out, net->a[net->nlayers], batch * net->L[net->nlayers - 1].out * 4);
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * The optimizer step: computed into scratch, committed only when every value is finite
 * ------------------------------------------------------------------------- */

typedef struct {
    float lr, step_size, bc2_sqrt; /* torch: step_size = lr / (1 - beta1^t) in double, then float */
} tl__stepc;

/* Moments below the smallest normal float are flushed to zero. WebAssembly has no flush-to-zero
 * mode and x86 takes ~100x longer on subnormal operands; Adam's first moment of a weight whose
 * gradient went quiet decays into that range within a few hundred steps and slowed whole epochs
 * down. The effect on a parameter is below lr * 1e-30 (the denominator is at least eps), and it
 * happens only where PyTorch's moment is itself subnormal. */
static inline float tl__ftz(float v) { return fabsf(v) < 1.17549435e-38f ? 0.0f : v; }

/* One parameter array: p, its gradient g, states m and v; new values into np, nm, nv. */
static void tl__update(const tl_net *net, const tl__stepc *c, size_t n, const float *p, const float *g,
                       const float *m, const float *v, float *np, float *nm, float *nv) {
    size_t i = 0;
#if TL_SIMD
    if (net->opt != TL_OPT_SGD) { /* the scalar loop below, four lanes at a time, same operations */
        const int adamw = net->opt == TL_OPT_ADAMW, l2 = !adamw && net->wd > 0;
        const v128_t b1 = wasm_f32x4_splat(net->beta1), ob1 = wasm_f32x4_splat(1.0f - net->beta1);
        const v128_t b2 = wasm_f32x4_splat(net->beta2), ob2 = wasm_f32x4_splat(1.0f - net->beta2);
        const v128_t bc2 = wasm_f32x4_splat(c->bc2_sqrt), eps = wasm_f32x4_splat(net->eps);
        const v128_t ss = wasm_f32x4_splat(c->step_size), wd = wasm_f32x4_splat(net->wd);
        const v128_t decay = wasm_f32x4_splat(1.0f - c->lr * net->wd),
                     tiny = wasm_f32x4_splat(1.17549435e-38f);
        for (; i + 4 <= n; i += 4) {
            v128_t gi = wasm_v128_load(g + i), pi = wasm_v128_load(p + i);
            if (adamw) pi = wasm_f32x4_mul(pi, decay);
            if (l2) gi = wasm_f32x4_add(gi, wasm_f32x4_mul(wd, pi));
            v128_t mi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), b1), wasm_f32x4_mul(gi, ob1));
            v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), b2),
                                       wasm_f32x4_mul(wasm_f32x4_mul(gi, gi), ob2));
            v128_t denom = wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_sqrt(vi), bc2), eps);
            wasm_v128_store(np + i, wasm_f32x4_sub(pi, wasm_f32x4_mul(ss, wasm_f32x4_div(mi, denom))));
            /* tl__ftz: zero where |x| < FLT_MIN (a NaN compares false and stays) */
            wasm_v128_store(nm + i, wasm_v128_andnot(mi, wasm_f32x4_lt(wasm_f32x4_abs(mi), tiny)));
            wasm_v128_store(nv + i, wasm_v128_andnot(vi, wasm_f32x4_lt(wasm_f32x4_abs(vi), tiny)));
        }
    }
#endif
    for (; i < n; i++) {
        float gi = g[i], pi = p[i];
        if (net->opt == TL_OPT_SGD) {
            if (net->wd > 0) gi = gi + net->wd * pi;
            float buf = net->momentum > 0 ? (net->steps == 0 ? gi : m[i] * net->momentum + gi) : gi;
            nm[i] = tl__ftz(buf);
            nv[i] = v[i];
            np[i] = pi - c->lr * buf;
            continue;
        }
        if (net->opt == TL_OPT_ADAMW)
            pi = pi * (1.0f - c->lr * net->wd);
        else if (net->wd > 0)
            gi = gi + net->wd * pi;
        float mi = m[i] * net->beta1 + gi * (1.0f - net->beta1);
        float vi = v[i] * net->beta2 + gi * gi * (1.0f - net->beta2);
        float denom = sqrtf(vi) / c->bc2_sqrt + net->eps;
        nm[i] = tl__ftz(mi), nv[i] = tl__ftz(vi);
        np[i] = pi - c->step_size * (mi / denom);
    }
}

/* One slice of the optimizer step: a layer's weights (and with its first slice, its biases) into
 * the layer's next[] arrays, and whether every new value is finite. */
static void tl__update_task(void *ctx, size_t task, unsigned thread) {
    tl__layers_job *j = ctx;
    const tl__stepc *c = j->arg;
    size_t i0, n;
    tl__dense *L = tl__layers_slice(j, task, &i0, &n);
    float *const *nx = L->next;
    (void)thread;
    tl__update(j->net, c, n, L->w + i0, L->gw + i0, L->mw + i0, L->vw + i0, nx[0] + i0, nx[1] + i0, nx[2] + i0);
    int bad = !tl__finite_all(nx[0] + i0, n) || !tl__finite_all(nx[1] + i0, n) || !tl__finite_all(nx[2] + i0, n);
    if (i0 == 0) {
        tl__update(j->net, c, L->out, L->b, L->gb, L->mb, L->vb, nx[3], nx[4], nx[5]);
        bad |= !tl__finite_all(nx[3], L->out) || !tl__finite_all(nx[4], L->out) || !tl__finite_all(nx[5], L->out);
    }
    j->bad[task] = (uint8_t)bad;
}

tl_status tl_net_train_step(tl_net *net, const float *x, size_t batch, const uint32_t *labels,
                            const float *targets, float *loss) {
    tl_status s = tl_net_gradients(net, x, batch, labels, targets, loss);
    if (s) return s;
    for (uint32_t k = 0; k < net->nlayers; k++) { /* the arrays the step writes, made once */
        tl__dense *L = &net->L[k];
        for (int i = 0; i < 6; i++)
            if (!L->next[i] && !(L->next[i] = tl__malloc((i < 3 ? TL__PARAMS(L) : L->out) * 4))) return TL_ERR_NO_MEMORY;
    }
    double step = (double)net->steps + 1;
    float lr = tl_net_lr(net);
    tl__stepc c = {lr, (float)((double)lr / (1.0 - pow(net->beta1, step))),
                   (float)sqrt(1.0 - pow(net->beta2, step))};
    tl__layers_job j;
    size_t ntasks = tl__layers_plan(net, &j);
    j.arg = &c;
    tl__parallel(ntasks, tl__update_task, &j);
    int lsq = net->quant == TL_QUANT_LSQ || net->quant == TL_QUANT_LSQ_PAPER, bad = tl__any(j.bad, ntasks);
    float na[64][3]; /* each layer's new alpha and its moments */
    for (uint32_t k = 0; k < net->nlayers; k++) {
        tl__dense *L = &net->L[k];
        float a = L->alpha, ga = L->galpha, ma = L->malpha, va = L->valpha;
        if (lsq)
            tl__update(net, &c, 1, &a, &ga, &ma, &va, &na[k][0], &na[k][1], &na[k][2]);
        else
            na[k][0] = a, na[k][1] = ma, na[k][2] = va;
        bad |= !tl__finite_all(na[k], 3);
    }
    if (bad) return TL_ERR_NON_FINITE; /* nothing committed */
    for (uint32_t k = 0; k < net->nlayers; k++) {
        tl__dense *L = &net->L[k];
        float **cur[6] = {&L->w, &L->mw, &L->vw, &L->b, &L->mb, &L->vb};
        for (int i = 0; i < 6; i++) {
            float *t = *cur[i];
            *cur[i] = L->next[i], L->next[i] = t;
        }
        L->alpha = na[k][0], L->malpha = na[k][1], L->valpha = na[k][2];
    }
    net->steps++;
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * What the network holds, and conversions to and from packed models
 * ------------------------------------------------------------------------- */

uint32_t tl_net_layer_count(const tl_net *net) { return net ? net->nlayers : 0; }

tl_status tl_net_widths(const tl_net *net, uint32_t *widths, size_t n) {
    if (!net || !widths) return TL_ERR_NULL;
    if (n != (size_t)net->nlayers + 1) return TL_ERR_SIZE;
    widths[0] = (uint32_t)net->L[0].in;
    for (uint32_t k = 0; k < net->nlayers; k++) widths[k + 1] = (uint32_t)net->L[k].out;
    return TL_OK;
}

static tl_status tl__layer_of(const tl_net *net, uint32_t k, const tl__dense **L) {
    if (!net) return TL_ERR_NULL;
    if (k >= net->nlayers) return tl__fail(TL_ERR_ARGUMENT, "layer %u of a %u-layer network", k, net->nlayers);
    *L = &net->L[k];
    return TL_OK;
}

tl_status tl_net_layer_trits(const tl_net *net, uint32_t k, int8_t *trits, float *scales) {
    const tl__dense *L = NULL;
    tl_status s = tl__layer_of(net, k, &L);
    if (s) return s;
    if (!trits || !scales) return TL_ERR_NULL;
    return tl__quantize_into(net, L, NULL, trits, scales);
}

tl_status tl_net_deadzone_stats(const tl_net *net, uint32_t k, double band, tl_deadzone_stats *out) {
    const tl__dense *L = NULL;
    tl_status s = tl__layer_of(net, k, &L);
    return s ? s : tl_deadzone_stats_compute(L->w, TL__PARAMS(L), band, out);
}

tl_status tl_net_evaluate(tl_net *net, const float *x, size_t n, const uint32_t *labels, double *accuracy,
                          double *loss) {
    if (!net || !x || !labels) return TL_ERR_NULL;
    if (n == 0) return TL_ERR_EMPTY;
    size_t in = net->L[0].in, O = net->L[net->nlayers - 1].out;
    for (size_t i = 0; i < n; i++)
        if (labels[i] >= O) return tl__fail(TL_ERR_ARGUMENT, "labels[%zu] is %u, not a class in 0..%zu", i, labels[i], O - 1);
    size_t correct = 0;
    double total = 0;
    for (size_t s0 = 0; s0 < n; s0 += 256) {
        size_t m = n - s0 < 256 ? n - s0 : 256;
        tl_status s = tl__check_batch(net, x + s0 * in, m);
        if (!s) s = tl__forward(net, x + s0 * in, m);
        if (s) return s;
        const float *y = net->a[net->nlayers];
        for (size_t t = 0; t < m; t++) {
            const float *row = y + t * O;
            size_t best = 0;
            for (size_t c = 1; c < O; c++)
                if (row[c] > row[best]) best = c;
            double mx = row[best], sum = 0;
            for (size_t c = 0; c < O; c++) sum += exp((double)row[c] - mx);
            total += mx + log(sum) - row[labels[s0 + t]];
            correct += best == labels[s0 + t];
        }
    }
    if (accuracy) *accuracy = (double)correct / (double)n;
    if (loss) *loss = total / (double)n;
    return TL_OK;
}

static const char *const tl__act_names[] = {NULL, "relu", "gelu", "silu"};
static const char *const tl__quant_json[] = {NULL, "per_tensor", "per_row", "lsq", "lsq_paper"};

tl_status tl_net_to_model(const tl_net *net, tl_format f, tl_model **out) {
    if (!net || !out) return TL_ERR_NULL;
    *out = NULL;
    tl_model_builder *b;
    tl_status s = tl_model_builder_new(net->L[0].in, &b);
    if (s) return s;
    char json[96];
    for (uint32_t k = 0; k < net->nlayers && !s; k++) {
        const tl__dense *L = &net->L[k];
        int8_t *q = tl__malloc(TL__PARAMS(L));
        float *scale = tl__malloc(L->out * sizeof *scale);
        tl_matrix *m = NULL;
        s = q && scale ? TL_OK : TL_ERR_NO_MEMORY;
        if (!s) s = tl__quantize_into(net, L, NULL, q, scale);
        if (!s) s = tl_matrix_from_trits(f, q, L->out, L->in, scale, L->out, &m);
        if (!s) s = tl_model_builder_stage(b, "bias", 4, L->b, L->out);
        if (!s) {
            tl_quantizer lq = net->quant == TL_QUANT_NONE ? TL_QUANT_PER_TENSOR : net->quant;
            int n = snprintf(json, sizeof json, "{\"type\":\"linear\",\"quantizer\":\"%s\"}", tl__quant_json[lq]);
            s = tl_model_builder_add(b, json, (size_t)n, m);
        }
        if (!s && k + 1 < net->nlayers && net->act != TL_ACT_NONE) {
            int n = snprintf(json, sizeof json, "{\"type\":\"%s\"}", tl__act_names[net->act]);
            s = tl_model_builder_add(b, json, (size_t)n, NULL);
        }
        tl_matrix_free(m), tl__free(q), tl__free(scale);
    }
    if (!s) {
        int n = snprintf(json, sizeof json, "{\"quantizer\":\"%s\",\"steps\":\"%u\"}",
                         net->quant == TL_QUANT_NONE ? "none" : tl__quant_json[net->quant], net->steps);
        if (!(s = tl_model_builder_finish(b, out)) && (s = tl_model_set_metadata(*out, json, (size_t)n))) {
            tl_model_free(*out);
            *out = NULL;
        }
    }
    tl_model_builder_free(b);
    return s;
}

/* Shadow weights w[i] = trit[i] x magnitude whose AbsMean (tl_absmean_scale, as the quantizers
 * take it) is s exactly: the magnitudes sum to a float32 P with fl(P / fl(n)) == s (P near s * n),
 * nz - 1 of them P / nz and the last one what is left of P. Every nonzero |w| / s is then about
 * n / nz >= 1: the same trit again. When no P gives s (a scale that is no AbsMean of n floats),
 * the nearest: s * n / nz. */
static void tl__fill_absmean(float *w, const int8_t *t, size_t n, float s) {
    size_t nz = 0, last = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i]) nz++, last = i;
    if (!nz) {
        memset(w, 0, n * sizeof *w);
        return;
    }
    float fn = (float)n, p0 = s * fn;
    for (int k = 0; k < 9; k++) { /* P = p0, then one ulp up, one down, two up, ... */
        float p = p0;
        for (int j = 0; j < (k + 1) / 2; j++) p = nextafterf(p, k % 2 ? INFINITY : 0.0f);
        float m = (float)((double)p / (double)nz), ml = (float)((double)p - (double)m * (double)(nz - 1)), a;
        for (size_t i = 0; i < n; i++) w[i] = (float)t[i] * m;
        w[last] = (float)t[last] * ml;
        if (tl_absmean_scale(w, n, &a) == TL_OK && a == s) return;
    }
    double f = (double)s * (double)n / (double)nz;
    for (size_t i = 0; i < n; i++) w[i] = (float)(t[i] * f);
}

/* A model's linear layers and the one activation between them, as network widths. */
static tl_status tl__model_shape(const tl_model *m, uint32_t *widths, uint32_t *nlin, tl_activation *act,
                                 tl_quantizer *recorded) {
    size_t n = tl_model_layer_count(m);
    int act_seen = -1, prev_linear = 0;
    *nlin = 0, *recorded = TL_QUANT_NONE;
    widths[0] = (uint32_t)tl_model_input_size(m);
    for (size_t i = 0; i < n; i++) {
        tl_layer_info L;
        tl_model_layer_info(m, i, &L);
        if (!strcmp(L.type, "linear")) {
            if (prev_linear) {
                if (act_seen > 0) goto mixed;
                act_seen = TL_ACT_NONE;
            }
            if (*nlin == 64) return tl__fail(TL_ERR_ARGUMENT, "a trainable model has at most 64 linear layers");
            if (L.out > TL_MAX_WIDTH || L.in > TL_MAX_WIDTH)
                return tl__fail(TL_ERR_ARGUMENT, "layers[%zu] is wider than %u", i, (unsigned)TL_MAX_WIDTH);
            widths[++*nlin] = (uint32_t)L.out;
            if (*recorded == TL_QUANT_NONE && L.quantizer)
                for (int q = 1; q < 5; q++)
                    if (!strcmp(L.quantizer, tl__quant_json[q])) *recorded = (tl_quantizer)q;
            prev_linear = 1;
            continue;
        }
        int a = 0;
        for (int k = 1; k < 4; k++)
            if (!strcmp(L.type, tl__act_names[k])) a = k;
        if (!a || !prev_linear)
            return tl__fail(TL_ERR_ARGUMENT,
                            "layers[%zu] (%s) cannot be trained: a trainable model is linear layers with one "
                            "activation (relu, gelu or silu) between them",
                            i, L.type);
        if (act_seen >= 0 && act_seen != a) goto mixed;
        act_seen = a, prev_linear = 0;
    }
    if (!prev_linear)
        return tl__fail(TL_ERR_ARGUMENT, "a trainable model ends with a linear layer");
    *act = act_seen < 0 ? TL_ACT_NONE : (tl_activation)act_seen;
    return TL_OK;
mixed:
    return tl__fail(TL_ERR_ARGUMENT, "a trainable model has the same activation between all its linear layers");
}

tl_status tl_net_from_model(const tl_model *m, tl_quantizer q, uint64_t seed, tl_net **out) {
    if (!m || !out) return TL_ERR_NULL;
    *out = NULL;
    if (q > TL_QUANT_LSQ_PAPER) return TL_ERR_ARGUMENT;
    uint32_t widths[65], nlin;
    tl_activation act = TL_ACT_NONE;
    tl_quantizer recorded;
    tl_status s = tl__model_shape(m, widths, &nlin, &act, &recorded);
    if (s) return s;
    if (q == TL_QUANT_NONE) q = recorded != TL_QUANT_NONE ? recorded : TL_QUANT_PER_TENSOR;
    tl_net *net;
    if ((s = tl_net_create(nlin, widths, act, q, seed, &net))) return s;
    for (size_t i = 0, k = 0; i < tl_model_layer_count(m) && !s; i++) {
        tl_layer_info L;
        tl_model_layer_info(m, i, &L);
        if (strcmp(L.type, "linear")) continue;
        tl__dense *D = &net->L[k];
        size_t rows = L.out, cols = L.in;
        const float *sc = tl_matrix_scales(L.matrix);
        int8_t *t = tl__malloc(rows * cols);
        if (!t) {
            s = TL_ERR_NO_MEMORY;
            break;
        }
        s = tl_matrix_unpack(L.matrix, t, rows * cols);
        int same = 1;
        for (size_t r = 1; r < rows; r++) same &= sc[r] == sc[0];
        if (!s && q == TL_QUANT_PER_TENSOR && same) {
            tl__fill_absmean(D->w, t, rows * cols, sc[0]);
        } else if (!s && q == TL_QUANT_PER_ROW) {
            for (size_t r = 0; r < rows; r++) tl__fill_absmean(D->w + r * cols, t + r * cols, cols, sc[r]);
        } else if (!s) {
            /* per_tensor over differing row scales: trit x s / p (p the nonzero fraction) keeps the
             * trits; LSQ: trit x alpha, the learned scale itself */
            size_t nz = 0;
            for (size_t i2 = 0; i2 < rows * cols; i2++) nz += t[i2] != 0;
            double p_tensor = nz ? (double)nz / (double)(rows * cols) : 1.0;
            for (size_t r = 0; r < rows; r++) {
                double f = q == TL_QUANT_PER_TENSOR ? sc[r] / p_tensor : sc[0];
                for (size_t c = 0; c < cols; c++) D->w[r * cols + c] = (float)(t[r * cols + c] * f);
            }
        }
        if (L.bias)
            memcpy(D->b, L.bias, rows * sizeof *D->b);
        else
            memset(D->b, 0, rows * sizeof *D->b);
        D->alpha = sc[0] > 0 ? sc[0] : 1.0f;
        tl__free(t);
        k++;
    }
    if (s) {
        tl_net_free(net);
        return s;
    }
    *out = net;
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * The training loop
 * ------------------------------------------------------------------------- */

struct tl_fit {
    tl_net *net;
    const float *x, *targets;
    const uint32_t *labels;
    size_t n, batch, pos, last;
    uint32_t epoch, rng;
    uint32_t *order;
    float *bx, *bt;
    uint32_t *bl;
};

void tl_fit_free(tl_fit *f) {
    if (!f) return;
    tl__free(f->order), tl__free(f->bx), tl__free(f->bt), tl__free(f->bl);
    tl__free(f);
}

tl_status tl_fit_new(tl_net *net, const float *x, size_t n, const uint32_t *labels, const float *targets,
                     size_t batch, uint64_t seed, tl_fit **out) {
    if (!net || !x || !out) return TL_ERR_NULL;
    *out = NULL;
    if (!labels == !targets) return tl__fail(TL_ERR_ARGUMENT, "give labels (cross-entropy) or targets (MSE), not both");
    if (labels && net->loss != TL_LOSS_CROSS_ENTROPY)
        return tl__fail(TL_ERR_ARGUMENT, "labels need the cross-entropy loss");
    if (targets && net->loss != TL_LOSS_MSE) return tl__fail(TL_ERR_ARGUMENT, "targets need the MSE loss");
    if (n == 0 || batch == 0) return tl__fail(TL_ERR_EMPTY, "%zu samples in batches of %zu", n, batch);
    size_t in = net->L[0].in, O = net->L[net->nlayers - 1].out;
    if (n > TL_MAX_ELEMENTS / in || n > TL_MAX_ELEMENTS / O || batch > TL_MAX_ELEMENTS / net->max_width)
        return tl__fail(TL_ERR_OVERFLOW, "%zu samples of %zu inputs", n, in);
    if (batch > n) batch = n;
    size_t bad = tl__first_non_finite(x, n * in);
    if (bad != n * in)
        return tl__fail(TL_ERR_NON_FINITE, "x[%zu] (sample %zu) is not finite", bad, bad / in);
    if (labels) {
        for (size_t i = 0; i < n; i++)
            if (labels[i] >= O)
                return tl__fail(TL_ERR_ARGUMENT, "labels[%zu] is %u, not a class in 0..%zu", i, labels[i], O - 1);
    } else if ((bad = tl__first_non_finite(targets, n * O)) != n * O) {
        return tl__fail(TL_ERR_NON_FINITE, "targets[%zu] is not finite", bad);
    }
    tl_fit *f = tl__calloc(1, sizeof *f);
    if (!f) return TL_ERR_NO_MEMORY;
    f->net = net, f->x = x, f->labels = labels, f->targets = targets, f->n = n, f->batch = batch;
    f->rng = (uint32_t)seed ? (uint32_t)seed : 0x9E3779B9u;
    f->order = tl__malloc(n * sizeof *f->order);
    f->bx = tl__malloc(batch * in * sizeof *f->bx);
    f->bl = labels ? tl__malloc(batch * sizeof *f->bl) : NULL;
    f->bt = targets ? tl__malloc(batch * O * sizeof *f->bt) : NULL;
    if (!f->order || !f->bx || (labels && !f->bl) || (targets && !f->bt)) {
        tl_fit_free(f);
        return TL_ERR_NO_MEMORY;
    }
    *out = f;
    return TL_OK;
}

static uint32_t tl__xorshift32(uint32_t *s) {
    uint32_t v = *s;
    v ^= v << 13, v ^= v >> 17, v ^= v << 5;
    return *s = v;
}

tl_status tl_fit_step(tl_fit *f, float *loss) {
    if (!f) return TL_ERR_NULL;
    const tl_net *net = f->net;
    size_t in = net->L[0].in, O = net->L[net->nlayers - 1].out;
    if (f->pos == 0) {
        for (size_t i = 0; i < f->n; i++) f->order[i] = (uint32_t)i;
        for (size_t i = f->n - 1; i > 0; i--) {
            size_t j = tl__xorshift32(&f->rng) % (i + 1);
            uint32_t t = f->order[i];
            f->order[i] = f->order[j], f->order[j] = t;
        }
    }
    size_t m = f->n - f->pos < f->batch ? f->n - f->pos : f->batch;
    for (size_t i = 0; i < m; i++) {
        size_t j = f->order[f->pos + i];
        memcpy(f->bx + i * in, f->x + j * in, in * sizeof *f->bx);
        if (f->bl) f->bl[i] = f->labels[j];
        if (f->bt) memcpy(f->bt + i * O, f->targets + j * O, O * sizeof *f->bt);
    }
    f->last = m;
    tl_status s = tl_net_train_step(f->net, f->bx, m, f->bl, f->bt, loss);
    if (s) return s;
    f->pos += m;
    if (f->pos == f->n) f->pos = 0, f->epoch++;
    return TL_OK;
}

uint32_t tl_fit_epoch(const tl_fit *f) { return f ? f->epoch : 0; }
size_t tl_fit_position(const tl_fit *f) { return f ? f->pos : 0; }

tl_status tl_fit_evaluate(tl_fit *f, int whole, double *accuracy, double *loss) {
    if (!f) return TL_ERR_NULL;
    if (!f->bl) return tl__fail(TL_ERR_ARGUMENT, "accuracy needs labels");
    if (whole) return tl_net_evaluate(f->net, f->x, f->n, f->labels, accuracy, loss);
    if (!f->last) return tl__fail(TL_ERR_ARGUMENT, "no mini-batch has run yet");
    return tl_net_evaluate(f->net, f->bx, f->last, f->bl, accuracy, loss);
}

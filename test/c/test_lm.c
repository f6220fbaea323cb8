/* test_lm.c — the language-model runtime (src/lm.c) in every build: models made here as
 * safetensors bytes; prefill in chunks equal to step-by-step decode bit for bit; the whole forward
 * against a plain reference written here from the reference kernels (tl_ref_*) and the shared row
 * operations; every config and tensor error with its detail; out-of-memory sweeps over load and
 * forward; the sampler. The PyTorch goldens are checked by test/js/lm.test.js. */
#include <math.h>

#include "check.h"
#include "internal.h"

/* --- a safetensors file of float32 tensors, made here --- */

typedef struct {
    char name[96];
    size_t d0, d1; /* d1 == 0: 1-D */
    float *v;
} tensor;

typedef struct {
    size_t V, D, F, H, KV, hd, L;
    int tied, relu2;
    tensor t[128];
    size_t n;
} spec;

static float frand(float sd) { return sd * (((float)(check_rnd() >> 8) / 16777216.0f) * 2.0f - 1.0f); }

static void add(spec *s, const char *name, size_t d0, size_t d1, float base, float sd) {
    tensor *t = &s->t[s->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->d0 = d0, t->d1 = d1;
    size_t n = d1 ? d0 * d1 : d0;
    t->v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) t->v[i] = base + frand(sd);
}

static void make_spec(spec *s, size_t V, size_t D, size_t F, size_t H, size_t KV, size_t hd, size_t L, int tied,
                      int relu2) {
    memset(s, 0, sizeof *s);
    s->V = V, s->D = D, s->F = F, s->H = H, s->KV = KV, s->hd = hd, s->L = L, s->tied = tied, s->relu2 = relu2;
    char n[96];
    add(s, "model.embed_tokens.weight", V, D, 0, 1.0f);
    add(s, "model.norm.weight", D, 0, 1, 0.1f);
    if (!tied) add(s, "lm_head.weight", V, D, 0, 0.2f);
    for (size_t l = 0; l < L; l++) {
#define A(suffix, d0, d1, base, sd) (snprintf(n, sizeof n, "model.layers.%zu." suffix, l), add(s, n, d0, d1, base, sd))
        A("input_layernorm.weight", D, 0, 1, 0.1f);
        A("self_attn.q_proj.weight", H * hd, D, 0, 0.2f);
        A("self_attn.k_proj.weight", KV * hd, D, 0, 0.2f);
        A("self_attn.v_proj.weight", KV * hd, D, 0, 0.2f);
        A("self_attn.attn_sub_norm.weight", H * hd, 0, 1, 0.1f);
        A("self_attn.o_proj.weight", D, H * hd, 0, 0.2f);
        A("post_attention_layernorm.weight", D, 0, 1, 0.1f);
        A("mlp.gate_proj.weight", F, D, 0, 0.2f);
        A("mlp.up_proj.weight", F, D, 0, 0.2f);
        A("mlp.ffn_sub_norm.weight", F, 0, 1, 0.1f);
        A("mlp.down_proj.weight", D, F, 0, 0.2f);
#undef A
    }
}

static void free_spec(spec *s) {
    for (size_t i = 0; i < s->n; i++) free(s->t[i].v);
}

static tensor *find(spec *s, const char *name) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return &s->t[i];
    return NULL;
}

/* The file, with tensor `skip` left out (NULL: none) and `reshape` given a wrong first dimension. */
static uint8_t *write_st(const spec *s, const char *skip, const char *reshape, size_t *len) {
    char *h = malloc(65536);
    size_t hl = 0, off = 0;
    hl += (size_t)sprintf(h + hl, "{");
    for (size_t i = 0; i < s->n; i++) {
        const tensor *t = &s->t[i];
        if (skip && !strcmp(skip, t->name)) continue;
        size_t d0 = reshape && !strcmp(reshape, t->name) ? t->d0 + 1 : t->d0, n = t->d1 ? d0 * t->d1 : d0;
        if (t->d1)
            hl += (size_t)sprintf(h + hl, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu,%zu],\"data_offsets\":[%zu,%zu]}",
                                  hl > 1 ? "," : "", t->name, d0, t->d1, off, off + 4 * n);
        else
            hl += (size_t)sprintf(h + hl, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]}",
                                  hl > 1 ? "," : "", t->name, d0, off, off + 4 * n);
        off += 4 * n;
    }
    hl += (size_t)sprintf(h + hl, "}");
    uint8_t *f = malloc(8 + hl + off);
    for (int i = 0; i < 8; i++) f[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(f + 8, h, hl);
    size_t at = 8 + hl;
    for (size_t i = 0; i < s->n; i++) {
        const tensor *t = &s->t[i];
        if (skip && !strcmp(skip, t->name)) continue;
        size_t d0 = reshape && !strcmp(reshape, t->name) ? t->d0 + 1 : t->d0, n = t->d1 ? d0 * t->d1 : d0;
        for (size_t j = 0; j < n; j++) {
            float v = j < (t->d1 ? t->d0 * t->d1 : t->d0) ? t->v[j] : 0.5f;
            memcpy(f + at + 4 * j, &v, 4);
        }
        at += 4 * n;
    }
    free(h);
    *len = at;
    return f;
}

static size_t config_of(const spec *s, const char *extra, char *out, size_t cap) {
    return (size_t)snprintf(out, cap,
                            "{\"vocab_size\":%zu,\"hidden_size\":%zu,\"intermediate_size\":%zu,\"num_hidden_layers\":%zu,"
                            "\"num_attention_heads\":%zu,\"num_key_value_heads\":%zu,\"head_dim\":%zu,"
                            "\"max_position_embeddings\":64,\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,"
                            "\"hidden_act\":\"%s\",\"tie_word_embeddings\":%s,\"architectures\":[\"x\"]%s}",
                            s->V, s->D, s->F, s->L, s->H, s->KV, s->hd, s->relu2 ? "relu2" : "silu",
                            s->tied ? "true" : "false", extra ? extra : "");
}

static tl_status load(const spec *s, const char *extra, const char *skip, const char *reshape, size_t context,
                      tl_lm **out) {
    size_t len;
    uint8_t *f = write_st(s, skip, reshape, &len);
    char cfg[2048];
    size_t cl = config_of(s, extra, cfg, sizeof cfg);
    tl_safetensors *st = NULL;
    tl_status r = tl_safetensors_open(f, len, &st);
    if (!r) r = tl_lm_load(cfg, cl, st, TL_FORMAT_I2, context, out);
    tl_safetensors_free(st);
    free(f);
    return r;
}

/* --- the plain reference forward: unpacked trits, tl_ref_* products, the shared row ops --- */

typedef struct {
    int8_t *t;
    float alpha;
    size_t rows, cols;
} rproj;

static rproj rq(const tensor *w) {
    rproj p = {malloc(w->d0 * w->d1), 0, w->d0, w->d1};
    p.alpha = tl_ref_absmean_scale(w->v, w->d0 * w->d1);
    tl_ref_ternary_signs(w->v, w->d0 * w->d1, p.alpha, p.t);
    return p;
}

static void rlinear(const rproj *p, const float *x, int int8, float *out) {
    float *sc = malloc(p->rows * sizeof(float));
    for (size_t r = 0; r < p->rows; r++) sc[r] = p->alpha;
    if (int8) {
        int8_t *xq = malloc(p->cols);
        float s;
        tl_ref_quantize_activations_i8(x, p->cols, 1, xq, &s);
        tl_ref_matmul_i8(p->t, sc, p->rows, p->cols, xq, 1, &s, NULL, out);
        free(xq);
    } else {
        tl_ref_matmul_f32(p->t, sc, p->rows, p->cols, x, 1, out);
    }
    free(sc);
}

/* Logits of every position for tokens[0..n), from position 0. */
static void reference(spec *s, const uint32_t *tokens, size_t n, int int8, float *logits) {
    size_t D = s->D, F = s->F, Q = s->H * s->hd, KV = s->KV * s->hd, hd = s->hd, half = hd / 2;
    float *h = calloc(n * D, 4), *x = malloc(D * 4), *q = malloc(Q * 4), *kc = malloc(s->L * n * KV * 4),
          *vc = malloc(s->L * n * KV * 4), *att = malloc(Q * 4), *o = malloc(D * 4), *g = malloc(F * 4),
          *u = malloc(F * 4), *sc = malloc(n * 4);
    const tensor *E = find(s, "model.embed_tokens.weight");
    for (size_t t = 0; t < n; t++) memcpy(h + t * D, E->v + tokens[t] * D, D * 4);
    char nm[96];
#define T(suffix) (snprintf(nm, sizeof nm, "model.layers.%zu." suffix, l), find(s, nm))
    for (size_t l = 0; l < s->L; l++) {
        rproj pq = rq(T("self_attn.q_proj.weight")), pk = rq(T("self_attn.k_proj.weight")),
              pv = rq(T("self_attn.v_proj.weight")), po = rq(T("self_attn.o_proj.weight")),
              pg = rq(T("mlp.gate_proj.weight")), pu = rq(T("mlp.up_proj.weight")), pd = rq(T("mlp.down_proj.weight"));
        for (size_t t = 0; t < n; t++) { /* token by token, as a decode would */
            float *ht = h + t * D, *k = kc + (l * n + t) * KV, *v = vc + (l * n + t) * KV;
            memcpy(x, ht, D * 4);
            tl__rms_norm(x, D, 1e-5f, T("input_layernorm.weight")->v);
            rlinear(&pq, x, int8, q), rlinear(&pk, x, int8, k), rlinear(&pv, x, int8, v);
            for (size_t j = 0; j < half; j++) {
                double fr = pow(10000.0, -2.0 * (double)j / (double)hd);
                float c = (float)cos((double)t * fr), sn = (float)sin((double)t * fr);
                for (size_t hh = 0; hh < s->H; hh++) {
                    float *a = q + hh * hd, x0 = a[j], x1 = a[j + half];
                    a[j] = x0 * c - x1 * sn, a[j + half] = x1 * c + x0 * sn;
                }
                for (size_t hh = 0; hh < s->KV; hh++) {
                    float *a = k + hh * hd, x0 = a[j], x1 = a[j + half];
                    a[j] = x0 * c - x1 * sn, a[j + half] = x1 * c + x0 * sn;
                }
            }
            for (size_t hh = 0; hh < s->H; hh++) {
                size_t kh = hh / (s->H / s->KV);
                for (size_t j = 0; j <= t; j++)
                    sc[j] = tl__dot_f32(q + hh * hd, kc + (l * n + j) * KV + kh * hd, hd) * (1.0f / sqrtf((float)hd));
                tl__softmax(sc, t + 1);
                float *a = att + hh * hd;
                memset(a, 0, hd * 4);
                for (size_t j = 0; j <= t; j++)
                    for (size_t i = 0; i < hd; i++) a[i] = a[i] + sc[j] * vc[(l * n + j) * KV + kh * hd + i];
            }
            tl__rms_norm(att, Q, 1e-5f, T("self_attn.attn_sub_norm.weight")->v);
            rlinear(&po, att, int8, o);
            for (size_t i = 0; i < D; i++) ht[i] += o[i];
            memcpy(x, ht, D * 4);
            tl__rms_norm(x, D, 1e-5f, T("post_attention_layernorm.weight")->v);
            rlinear(&pg, x, int8, g), rlinear(&pu, x, int8, u);
            for (size_t i = 0; i < F; i++) {
                float a = g[i];
                a = s->relu2 ? (a > 0 ? a * a : 0.0f) : tl__silu(a);
                g[i] = a * u[i];
            }
            tl__rms_norm(g, F, 1e-5f, T("mlp.ffn_sub_norm.weight")->v);
            rlinear(&pd, g, int8, o);
            for (size_t i = 0; i < D; i++) ht[i] += o[i];
        }
        free(pq.t), free(pk.t), free(pv.t), free(po.t), free(pg.t), free(pu.t), free(pd.t);
    }
#undef T
    const tensor *Hd = s->tied ? E : find(s, "lm_head.weight");
    for (size_t t = 0; t < n; t++) {
        tl__rms_norm(h + t * D, D, 1e-5f, find(s, "model.norm.weight")->v);
        for (size_t v = 0; v < s->V; v++) logits[t * s->V + v] = tl__dot_f32(Hd->v + v * D, h + t * D, D);
    }
    free(h), free(x), free(q), free(kc), free(vc), free(att), free(o), free(g), free(u), free(sc);
}

/* --- tests --- */

static void check_model(size_t V, size_t D, size_t F, size_t H, size_t KV, size_t hd, size_t L, int tied, int relu2) {
    spec s;
    make_spec(&s, V, D, F, H, KV, hd, L, tied, relu2);
    tl_lm *lm = NULL;
    CHECK(load(&s, NULL, NULL, NULL, 48, &lm) == TL_OK, "load V%zu D%zu: %s", V, D, tl_error_detail());
    if (!lm) {
        free_spec(&s);
        return;
    }
    enum { N = 40 };
    uint32_t tok[N];
    for (size_t i = 0; i < N; i++) tok[i] = check_rnd() % V;
    float *all = malloc(N * V * 4), *step = malloc(V * 4), *ref = malloc(N * V * 4);
    for (int int8 = 1; int8 >= 0; int8--) {
        CHECK(tl_lm_set_precision(lm, int8 ? TL_PRECISION_INT8 : TL_PRECISION_FLOAT) == TL_OK, "precision");
        tl_lm_reset(lm);
        CHECK(tl_lm_forward(lm, tok, N, 1, all, N * V) == TL_OK, "prefill: %s", tl_error_detail());
        CHECK(tl_lm_position(lm) == N, "position %zu", tl_lm_position(lm));
        /* step by step (and a 3-token chunk in the middle): the same bits */
        tl_lm_reset(lm);
        int same = 1;
        for (size_t t = 0; t < N;) {
            size_t c = t == 10 ? 3 : 1;
            CHECK(tl_lm_forward(lm, tok + t, c, 0, step, V) == TL_OK, "step");
            t += c;
            same &= !memcmp(step, all + (t - 1) * V, V * 4);
        }
        CHECK(same, "%s: prefill of %d tokens and step decode give the same logits", int8 ? "int8" : "float", N);
        /* the reference: int8 exact to the bit (the same float ops); float within the kernels'
         * summation-order tolerance */
        reference(&s, tok, N, int8, ref);
        double worst = 0;
        for (size_t t = 0; t < N; t++) {
            double mx = 0, d = 0;
            for (size_t v = 0; v < V; v++) {
                mx = fmax(mx, fabs(ref[t * V + v]));
                d = fmax(d, fabs((double)ref[t * V + v] - all[t * V + v]));
            }
            worst = fmax(worst, d / mx);
        }
        if (int8)
            CHECK(!memcmp(ref, all, N * V * 4), "int8: the forward equals the reference bit for bit (worst %g)", worst);
        else
            CHECK(worst < 1e-4, "float: the forward is within 1e-4 of the reference (relative to each row's largest): %g",
                  worst);
    }
    free(all), free(step), free(ref);
    tl_lm_free(lm);
    free_spec(&s);
}

static void test_models(void) {
    check_model(61, 32, 80, 4, 2, 8, 2, 1, 1);  /* GQA, tied, squared ReLU */
    check_model(50, 48, 96, 3, 3, 16, 2, 0, 0); /* MHA, untied, SiLU */
    check_model(97, 64, 130, 8, 1, 8, 1, 1, 0); /* MQA */
}

static void test_errors(void) {
    spec s;
    make_spec(&s, 30, 16, 24, 2, 1, 8, 2, 0, 1);
    tl_lm *lm = NULL;
    struct {
        const char *extra, *skip, *reshape, *needle;
        tl_status want;
    } cases[] = {
        {NULL, "model.layers.1.mlp.up_proj.weight", NULL, "model.layers.1.mlp.up_proj.weight", TL_ERR_PARSE},
        {NULL, "lm_head.weight", NULL, "lm_head.weight", TL_ERR_PARSE},
        {NULL, NULL, "model.layers.0.self_attn.k_proj.weight", "should be [8, 16]", TL_ERR_SHAPE},
        {NULL, NULL, "model.norm.weight", "model.norm.weight", TL_ERR_SHAPE},
        {",\"hidden_act\":\"gelu\"", NULL, NULL, "hidden_act", TL_ERR_PARSE},
        {",\"rope_theta\":-1", NULL, NULL, "rope_theta", TL_ERR_PARSE},
        {",\"tilelli_activations\":\"int4\"", NULL, NULL, "tilelli_activations", TL_ERR_PARSE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        /* a duplicate key is a JSON error, so the overriding keys are tested on a config without them */
        tl_error_clear();
        lm = NULL;
        tl_status r;
        if (cases[i].extra) {
            char cfg[1024];
            size_t cl = (size_t)snprintf(cfg, sizeof cfg,
                                         "{\"vocab_size\":30,\"hidden_size\":16,\"intermediate_size\":24,"
                                         "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"num_key_value_heads\":1%s%s}",
                                         strstr(cases[i].extra, "hidden_act") ? "" : ",\"hidden_act\":\"relu2\"",
                                         cases[i].extra);
            size_t len;
            uint8_t *f = write_st(&s, NULL, NULL, &len);
            tl_safetensors *st = NULL;
            tl_safetensors_open(f, len, &st);
            r = tl_lm_load(cfg, cl, st, TL_FORMAT_I2, 0, &lm);
            tl_safetensors_free(st);
            free(f);
        } else {
            r = load(&s, NULL, cases[i].skip, cases[i].reshape, 0, &lm);
        }
        CHECK(r == cases[i].want && !lm && strstr(tl_error_detail(), cases[i].needle),
              "case %zu: status %d, detail \"%s\" (want %d naming %s)", i, r, tl_error_detail(), cases[i].want,
              cases[i].needle);
    }
    /* config errors: each names its key */
    static const char *bad[] = {
        "[]",
        "{}",
        "{\"vocab_size\":0,\"hidden_size\":16,\"intermediate_size\":24,\"num_hidden_layers\":2,\"num_attention_heads\":2}",
        "{\"vocab_size\":30,\"hidden_size\":16,\"intermediate_size\":24,\"num_hidden_layers\":2,\"num_attention_heads\":3}",
        "{\"vocab_size\":30,\"hidden_size\":16,\"intermediate_size\":24,\"num_hidden_layers\":2,\"num_attention_heads\":2,"
        "\"num_key_value_heads\":3}",
        "{\"vocab_size\":30,\"hidden_size\":16,\"intermediate_size\":24,\"num_hidden_layers\":2,\"num_attention_heads\":2,"
        "\"head_dim\":7}",
        "{\"vocab_size\":1.5,\"hidden_size\":16,\"intermediate_size\":24,\"num_hidden_layers\":2,\"num_attention_heads\":2}",
        "{\"vocab_size\":30,\"hidden_size\":16,\"intermediate_size\":24,\"num_hidden_layers\":2,\"num_attention_heads\":2,"
        "\"tie_word_embeddings\":1}",
        "{\"vocab_size\":30,",
    };
    static const char *needle[] = {"not a JSON object", "vocab_size", "vocab_size", "not a multiple",
                                   "num_key_value_heads", "head_dim", "vocab_size", "tie_word_embeddings", "JSON"};
    size_t len;
    uint8_t *f = write_st(&s, NULL, NULL, &len);
    tl_safetensors *st = NULL;
    CHECK(tl_safetensors_open(f, len, &st) == TL_OK, "open");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tl_error_clear();
        lm = NULL;
        tl_status r = tl_lm_load(bad[i], strlen(bad[i]), st, TL_FORMAT_I2, 0, &lm);
        CHECK(r == TL_ERR_PARSE && !lm && strstr(tl_error_detail(), needle[i]), "config %zu: %d \"%s\"", i, r,
              tl_error_detail());
    }
    /* NaN in a projection */
    find(&s, "model.layers.0.mlp.gate_proj.weight")->v[5] = NAN;
    tl_status r = load(&s, NULL, NULL, NULL, 0, &lm);
    CHECK(r == TL_ERR_NON_FINITE && strstr(tl_error_detail(), "gate_proj") && strstr(tl_error_detail(), "element 5"),
          "NaN: %d %s", r, tl_error_detail());
    find(&s, "model.layers.0.mlp.gate_proj.weight")->v[5] = 0.1f;
    /* forward errors leave the model usable */
    CHECK(load(&s, NULL, NULL, NULL, 8, &lm) == TL_OK, "load");
    uint32_t tok[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float lg[9 * 30];
    CHECK(tl_lm_forward(lm, tok, 9, 0, lg, 30) == TL_ERR_SIZE && strstr(tl_error_detail(), "context of 8"), "context");
    tok[2] = 30;
    CHECK(tl_lm_forward(lm, tok, 3, 0, lg, 30) == TL_ERR_ARGUMENT && strstr(tl_error_detail(), "tokens[2] = 30"),
          "token id: %s", tl_error_detail());
    tok[2] = 3;
    CHECK(tl_lm_forward(lm, tok, 3, 1, lg, 30) == TL_ERR_SIZE, "logits length");
    CHECK(tl_lm_forward(lm, tok, 0, 0, lg, 30) == TL_ERR_EMPTY, "no tokens");
    CHECK(tl_lm_forward(NULL, tok, 1, 0, lg, 30) == TL_ERR_NULL, "NULL");
    CHECK(tl_lm_position(lm) == 0, "errors moved nothing");
    CHECK(tl_lm_forward(lm, tok, 8, 0, lg, 30) == TL_OK && tl_lm_position(lm) == 8, "then it runs");
    CHECK(tl_lm_set_precision(lm, TL_PRECISION_DEFAULT) == TL_ERR_ARGUMENT, "precision");
    char *js;
    size_t jl;
    CHECK(tl_lm_describe(lm, &js, &jl) == TL_OK && strstr(js, "\"num_key_value_heads\":1") &&
              strstr(js, "\"position\":8") && strstr(js, "\"hidden_act\":\"relu2\""),
          "describe");
    if (js) tl_free(js);
    tl_lm_free(lm);
    tl_safetensors_free(st);
    free(f);
    free_spec(&s);
}

/* tl_lm_save -> tl_lm_load(NULL config): the same logits bit for bit; a damaged file is refused */
static void test_save(void) {
    spec s;
    make_spec(&s, 40, 32, 72, 4, 2, 8, 2, 0, 0);
    tl_lm *lm = NULL, *back = NULL;
    CHECK(load(&s, ",\"tilelli_activations\":\"float\"", NULL, NULL, 32, &lm) == TL_OK, "load: %s", tl_error_detail());
    uint8_t *file = NULL;
    size_t len = 0;
    CHECK(tl_lm_save(lm, &file, &len) == TL_OK && file, "save");
    /* out of memory while saving: an error, nothing held */
    size_t live = tl_mem_live_blocks();
    int oom_ok = 1;
    for (size_t k = 1; k < 8; k++) {
        uint8_t *f2 = NULL;
        size_t l2;
        tl_mem_fail_after(k);
        tl_status r = tl_lm_save(lm, &f2, &l2);
        tl_mem_fail_after(0);
        if (r == TL_OK) tl_free(f2);
        else oom_ok &= r == TL_ERR_NO_MEMORY && tl_mem_live_blocks() == live;
    }
    CHECK(oom_ok, "save out of memory");
    tl_safetensors *st = NULL;
    CHECK(tl_safetensors_open(file, len, &st) == TL_OK, "the packed file is a safetensors file: %s", tl_error_detail());
    CHECK(tl_lm_load(NULL, 0, st, TL_FORMAT_TQ1, 32, &back) == TL_OK, "load the packed file: %s", tl_error_detail());
    uint32_t tok[12] = {1, 5, 9, 2, 33, 39, 0, 7, 7, 7, 12, 13};
    float a[12 * 40], b[12 * 40];
    for (int int8 = 0; int8 < 2 && back; int8++) {
        tl_lm_set_precision(lm, int8 ? TL_PRECISION_INT8 : TL_PRECISION_FLOAT);
        tl_lm_set_precision(back, int8 ? TL_PRECISION_INT8 : TL_PRECISION_FLOAT);
        tl_lm_reset(lm), tl_lm_reset(back);
        CHECK(tl_lm_forward(lm, tok, 12, 1, a, 12 * 40) == TL_OK && tl_lm_forward(back, tok, 12, 1, b, 12 * 40) == TL_OK &&
                  !memcmp(a, b, sizeof a),
              "saved and loaded: the same logits (%s)", int8 ? "int8" : "float");
    }
    char *js = NULL;
    size_t jl;
    CHECK(back && tl_lm_describe(back, &js, &jl) == TL_OK && strstr(js, "\"format\":\"i2\"") &&
              strstr(js, "\"tie_word_embeddings\":false"),
          "the packed file keeps its format and config: %s", js ? js : "");
    if (js) tl_free(js);
    tl_lm_free(back), back = NULL;
    /* the header edited in place (same lengths): a format name that names none, a packed tensor
     * of another dtype */
    struct {
        const char *from, *to, *needle;
        tl_status want;
    } edits[] = {{"\"tilelli.weights\":\"i2\"", "\"tilelli.weights\":\"x2\"", "names no format", TL_ERR_PARSE},
                 {"up_proj.weight.tilelli_packed\":{\"dtype\":\"U8\"", "up_proj.weight.tilelli_packed\":{\"dtype\":\"I8\"",
                  "must be U8", TL_ERR_DTYPE}};
    for (size_t k = 0; k < 2; k++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, file, len);
        char *hit = NULL;
        for (size_t o = 8; o + strlen(edits[k].from) < len && !hit; o++)
            if (!memcmp(copy + o, edits[k].from, strlen(edits[k].from))) hit = (char *)copy + o;
        CHECK(hit != NULL, "edit %zu: the header holds %s", k, edits[k].from);
        if (hit) memcpy(hit, edits[k].to, strlen(edits[k].to));
        tl_safetensors *st2 = NULL;
        tl_status r = tl_safetensors_open(copy, len, &st2);
        if (!r) r = tl_lm_load(NULL, 0, st2, TL_FORMAT_I2, 32, &back);
        CHECK(r == edits[k].want && !back && strstr(tl_error_detail(), edits[k].needle), "edit %zu: %d %s", k, r,
              tl_error_detail());
        tl_safetensors_free(st2);
        free(copy);
    }
    /* a context whose KV cache would pass 2^30 values */
    CHECK(tl_lm_load(NULL, 0, st, TL_FORMAT_I2, (size_t)1 << 28, &back) == TL_ERR_OVERFLOW && !back &&
              strstr(tl_error_detail(), "KV cache"),
          "context: %s", tl_error_detail());
    /* a packed code that is no trit (i2 code 3) */
    size_t i;
    const uint8_t *data;
    CHECK(tl_safetensors_find(st, "model.layers.1.mlp.up_proj.weight.tilelli_packed", 48, &i) == TL_OK, "find");
    tl_safetensors_tensor(st, i, NULL, NULL, NULL, NULL, NULL, &data, NULL);
    ((uint8_t *)file)[data - file] = 0xFF;
    CHECK(tl_lm_load(NULL, 0, st, TL_FORMAT_I2, 32, &back) == TL_ERR_FORMAT && !back &&
              strstr(tl_error_detail(), "up_proj"),
          "damaged codes: %s", tl_error_detail());
    tl_safetensors_free(st);
    tl_free(file);
    /* a float checkpoint without a config */
    size_t fl;
    uint8_t *f = write_st(&s, NULL, NULL, &fl);
    CHECK(tl_safetensors_open(f, fl, &st) == TL_OK, "open");
    CHECK(tl_lm_load(NULL, 0, st, TL_FORMAT_I2, 32, &back) == TL_ERR_PARSE && strstr(tl_error_detail(), "no config"),
          "no config: %s", tl_error_detail());
    tl_safetensors_free(st);
    free(f);
    tl_lm_free(lm);
    free_spec(&s);
}

/* A copy of the file's len bytes in memory of tl_alloc (counted by tl_mem_live_bytes). */
static uint8_t *in_tl(const uint8_t *file, size_t len) {
    uint8_t *b = tl_alloc(len);
    if (b) memcpy(b, file, len);
    return b;
}

/* The logits of 9 tokens in both precisions (2 x 9 x V values, float then int8), into out. */
static int logits_of(tl_lm *lm, size_t V, float *out) {
    uint32_t tok[9] = {1, 5, 9, 2, 33, 0, 7, 7, 12};
    int ok = lm != NULL;
    for (int int8 = 0; int8 < 2 && ok; int8++) {
        tl_lm_set_precision(lm, int8 ? TL_PRECISION_INT8 : TL_PRECISION_FLOAT);
        tl_lm_reset(lm);
        ok = tl_lm_forward(lm, tok, 9, 1, out + (size_t)int8 * 9 * V, 9 * V) == TL_OK;
    }
    return ok;
}

/* Whether lm gives the logits `want` (logits_of's), bit for bit. */
static int same_logits(tl_lm *lm, size_t V, const float *want) {
    float *got = malloc(2 * 9 * V * sizeof(float));
    int same = logits_of(lm, V, got) && !memcmp(got, want, 2 * 9 * V * sizeof(float));
    free(got);
    return same;
}

/* tl_lm_load_owned: a packed file's projections and tables used where they lie (the model holds
 * exactly their bytes less than a copying load, the same logits, the file freed with the model);
 * files it would use little of (float checkpoints, packed tensors out of alignment) converted
 * and freed; out of memory and bad values leave the file the caller's. */
static void test_load_owned(void) {
    static const char *embs[] = {"float32", "float16", "int8"};
    for (int e = 0; e < 3; e++)
        for (int tied = 0; tied < 2; tied++) {
            spec s;
            make_spec(&s, 40, 32, 72, 4, 2, 8, 2, tied, e == 1);
            char extra[96];
            snprintf(extra, sizeof extra, ",\"tilelli_embedding\":\"%s\"", embs[e]);
            tl_lm *ref = NULL, *lm = NULL;
            CHECK(load(&s, extra, NULL, NULL, 32, &ref) == TL_OK, "load %s: %s", embs[e], tl_error_detail());
            uint8_t *file = NULL;
            size_t len = 0;
            CHECK(ref && tl_lm_save(ref, &file, &len) == TL_OK, "save %s", embs[e]);
            if (!file) continue;
            /* where the packed tensors lie: 16-byte aligned; their bytes and the tables' */
            tl_safetensors *st = NULL;
            size_t packed = 0, aligned = 1;
            CHECK(tl_safetensors_open(file, len, &st) == TL_OK, "open");
            for (size_t i = 0; st && i < tl_safetensors_count(st); i++) {
                const char *nm;
                size_t nl, nb;
                const uint8_t *d;
                tl_safetensors_tensor(st, i, &nm, &nl, NULL, NULL, NULL, &d, &nb);
                if (nl > 15 && !memcmp(nm + nl - 15, ".tilelli_packed", 15)) packed += nb, aligned &= (size_t)(d - file) % 16 == 0;
            }
            tl_safetensors_free(st);
            CHECK(packed > 0 && aligned, "%s: every packed projection 16-byte aligned in the file", embs[e]);
            const size_t tables = (2 - (size_t)tied) * 40 * 32 * (e == 0 ? 4 : e == 1 ? 2 : 1);
            /* a copying load of the packed file, then the owned one (ref's logits first) */
            float want[2 * 9 * 40];
            CHECK(logits_of(ref, 40, want), "logits");
            size_t base = tl_mem_live_bytes();
            tl_lm *copy = NULL;
            CHECK(tl_safetensors_open(file, len, &st) == TL_OK && tl_lm_load(NULL, 0, st, TL_FORMAT_I2, 32, &copy) == TL_OK,
                  "copying load %s", embs[e]);
            tl_safetensors_free(st);
            size_t held_copy = tl_mem_live_bytes() - base;
            tl_lm_free(copy);
            uint8_t *b = in_tl(file, len);
            size_t with_file = tl_mem_live_bytes();
            CHECK(tl_lm_load_owned(NULL, 0, b, len, TL_FORMAT_I2, 32, &lm) == TL_OK, "owned load %s: %s", embs[e], tl_error_detail());
            size_t held_owned = tl_mem_live_bytes() - with_file;
            CHECK(held_owned + packed + tables == held_copy,
                  "%s, %s: the owned load holds the projections' %zu and the tables' %zu bytes less (%zu against %zu)", embs[e],
                  tied ? "tied" : "untied", packed, tables, held_owned, held_copy);
            CHECK(same_logits(lm, 40, want), "%s, %s: the owned load's logits are the copy's", embs[e], tied ? "tied" : "untied");
            /* its own file again: the same bytes (the projections read back from their tiles) */
            uint8_t *again = NULL;
            size_t alen = 0;
            CHECK(tl_lm_save(lm, &again, &alen) == TL_OK && alen == len && !memcmp(again, file, len), "%s: saved again, the same file", embs[e]);
            tl_free(again);
            tl_lm_free(lm), lm = NULL;
            CHECK(tl_mem_live_bytes() == base, "%s: freeing the model frees the file", embs[e]);
            /* out of memory at every allocation: the file stays the caller's, nothing else held */
            int bad = 0, done = 0;
            for (size_t n = 1; n < 400 && !done; n++) {
                b = in_tl(file, len);
                tl_mem_fail_after(n);
                tl_status r = tl_lm_load_owned(NULL, 0, b, len, TL_FORMAT_I2, 32, &lm);
                tl_mem_fail_after(0);
                if (r == TL_OK) done = 1, tl_lm_free(lm), lm = NULL;
                else bad += r != TL_ERR_NO_MEMORY || lm != NULL, tl_free(b);
                bad += tl_mem_live_bytes() != base;
            }
            CHECK(done && !bad, "%s: out of memory over the owned load: %d bad outcomes", embs[e], bad);
            if (e == 0) {
                /* a float checkpoint: converted, the file freed */
                size_t fl;
                uint8_t *f = write_st(&s, NULL, NULL, &fl);
                char cfg[2048];
                size_t cl = config_of(&s, extra, cfg, sizeof cfg);
                b = in_tl(f, fl);
                free(f);
                CHECK(tl_lm_load_owned(cfg, cl, b, fl, TL_FORMAT_I2, 32, &lm) == TL_OK, "a float checkpoint, owned: %s",
                      tl_error_detail());
                CHECK(tl_mem_live_bytes() - base == held_copy && same_logits(lm, 40, want),
                      "a float checkpoint: converted, its file freed (%zu held against %zu), the same logits",
                      tl_mem_live_bytes() - base, held_copy);
                tl_lm_free(lm), lm = NULL;
                /* a scale that is no positive number, a float32 table value that is infinite: refused,
                 * the file the caller's */
                CHECK(tl_safetensors_open(file, len, &st) == TL_OK, "open");
                size_t i;
                const uint8_t *d;
                const char *sname = "model.layers.0.self_attn.k_proj.weight.tilelli_scales";
                CHECK(tl_safetensors_find(st, sname, strlen(sname), &i) == TL_OK, "find %s", sname);
                tl_safetensors_tensor(st, i, NULL, NULL, NULL, NULL, NULL, &d, NULL);
                size_t scale_at = (size_t)(d - file);
                CHECK(tl_safetensors_find(st, "model.embed_tokens.weight", 25, &i) == TL_OK, "find the table");
                tl_safetensors_tensor(st, i, NULL, NULL, NULL, NULL, NULL, &d, NULL);
                size_t table_at = (size_t)(d - file);
                tl_safetensors_free(st);
                const float neg = -1.0f, inf = INFINITY;
                for (int k = 0; k < 2; k++) {
                    b = in_tl(file, len);
                    memcpy(b + (k ? table_at + 4 * 37 : scale_at + 4), k ? &inf : &neg, 4);
                    tl_lm *c = NULL;
                    tl_status rc = tl_safetensors_open(b, len, &st);
                    if (!rc) rc = tl_lm_load(NULL, 0, st, TL_FORMAT_I2, 32, &c);
                    tl_safetensors_free(st);
                    CHECK(rc == (k ? TL_ERR_NON_FINITE : TL_ERR_ALPHA) && !c, "bad %s, the copying load: %d %s",
                          k ? "table value" : "scale", rc, tl_error_detail());
                    tl_status r = tl_lm_load_owned(NULL, 0, b, len, TL_FORMAT_I2, 32, &lm);
                    CHECK(r == (k ? TL_ERR_NON_FINITE : TL_ERR_ALPHA) && !lm &&
                              strstr(tl_error_detail(), k ? "embed_tokens" : "k_proj") && tl_mem_live_bytes() == base + len,
                          "bad %s: %d %s", k ? "table value" : "scale", r, tl_error_detail());
                    tl_free(b);
                }
            }
            if (e == 1) {
                /* a float16 table value that is infinite */
                CHECK(tl_safetensors_open(file, len, &st) == TL_OK, "open");
                size_t i;
                const uint8_t *d;
                CHECK(tl_safetensors_find(st, "model.embed_tokens.weight", 25, &i) == TL_OK, "find the table");
                tl_safetensors_tensor(st, i, NULL, NULL, NULL, NULL, NULL, &d, NULL);
                size_t table_at = (size_t)(d - file);
                tl_safetensors_free(st);
                b = in_tl(file, len);
                b[table_at + 2 * 41] = 0x00, b[table_at + 2 * 41 + 1] = 0x7C;
                tl_status r = tl_lm_load_owned(NULL, 0, b, len, TL_FORMAT_I2, 32, &lm);
                CHECK(r == TL_ERR_NON_FINITE && !lm && strstr(tl_error_detail(), "element 41"), "float16 infinity: %d %s", r,
                      tl_error_detail());
                tl_free(b);
            }
            CHECK(tl_lm_load_owned(NULL, 0, NULL, len, TL_FORMAT_I2, 32, &lm) == TL_ERR_NULL, "NULL bytes");
            tl_free(file);
            tl_lm_free(ref);
            free_spec(&s);
        }
}

/* A packed file whose tensors lie 8 bytes off (its header 8 spaces longer): the projections out of
 * alignment are copied; the tables could stay where they lie, but a file the model would use
 * little of (here a sixth) is not kept: copies, and the file freed. The same logits. */
static void test_load_owned_moved(void) {
    spec s;
    make_spec(&s, 64, 128, 2048, 4, 2, 32, 8, 0, 1);
    tl_lm *ref = NULL, *lm = NULL;
    CHECK(load(&s, NULL, NULL, NULL, 32, &ref) == TL_OK, "load: %s", tl_error_detail());
    uint8_t *file = NULL;
    size_t len = 0;
    CHECK(ref && tl_lm_save(ref, &file, &len) == TL_OK && len > ((size_t)3 << 20) / 2, "save: %zu bytes", len);
    if (!file) return;
    float want[2 * 9 * 64];
    CHECK(logits_of(ref, 64, want), "logits");
    size_t base = tl_mem_live_bytes();
    tl_safetensors *st = NULL;
    CHECK(tl_safetensors_open(file, len, &st) == TL_OK && tl_lm_load(NULL, 0, st, TL_FORMAT_I2, 32, &lm) == TL_OK, "copy");
    tl_safetensors_free(st);
    size_t held_copy = tl_mem_live_bytes() - base;
    tl_lm_free(lm), lm = NULL;
    uint64_t hl = 0;
    for (int k = 0; k < 8; k++) hl |= (uint64_t)file[k] << (8 * k);
    uint8_t *moved = tl_alloc(len + 8);
    for (int k = 0; k < 8; k++) moved[k] = (uint8_t)((hl + 8) >> (8 * k));
    memcpy(moved + 8, file + 8, (size_t)hl);
    memset(moved + 8 + hl, ' ', 8);
    memcpy(moved + 16 + hl, file + 8 + hl, len - 8 - (size_t)hl);
    CHECK(tl_lm_load_owned(NULL, 0, moved, len + 8, TL_FORMAT_I2, 32, &lm) == TL_OK, "moved: %s", tl_error_detail());
    CHECK(tl_mem_live_bytes() - base == held_copy && same_logits(lm, 64, want),
          "tensors out of alignment: copied (%zu held against %zu), the file freed, the same logits", tl_mem_live_bytes() - base,
          held_copy);
    tl_lm_free(lm);
    CHECK(tl_mem_live_bytes() == base, "nothing held after: %zu against %zu", tl_mem_live_bytes(), base);
    tl_free(file);
    tl_lm_free(ref);
    free_spec(&s);
}

/* Decoding allocates only the products' workspace: a squared ReLU's zeros (the down projection's
 * input, about half of it) do not make the sparse-vector copy (tilelli.h) of a projection, in
 * either precision. */
static void test_no_growth(void) {
    spec s;
    make_spec(&s, 30, 64, 96, 2, 1, 32, 2, 1, 1);
    size_t len;
    uint8_t *f = write_st(&s, NULL, NULL, &len);
    char cfg[1024];
    size_t cl = config_of(&s, NULL, cfg, sizeof cfg);
    tl_safetensors *st = NULL;
    tl_lm *lm = NULL;
    CHECK(tl_safetensors_open(f, len, &st) == TL_OK && tl_lm_load(cfg, cl, st, TL_FORMAT_I2, 16, &lm) == TL_OK,
          "load");
    size_t bytes = tl_mem_live_bytes(), blocks = tl_mem_live_blocks();
    int ok = 1;
    for (int p = 0; p < 2 && lm; p++) {
        ok &= tl_lm_set_precision(lm, p ? TL_PRECISION_FLOAT : TL_PRECISION_INT8) == TL_OK;
        tl_lm_reset(lm);
        float lg[30];
        for (uint32_t t = 0; t < 6; t++) ok &= tl_lm_forward(lm, &t, 1, 0, lg, 30) == TL_OK;
    }
    /* the one block decoding may add: the products' workspace (kept, grown to the largest) */
    CHECK(ok && tl_mem_live_blocks() <= blocks + 1,
          "decoding adds at most the workspace: %zu blocks (%zu bytes) held after the load, %zu (%zu) after decoding",
          blocks, bytes, tl_mem_live_blocks(), tl_mem_live_bytes());
    tl_lm_free(lm);
    tl_safetensors_free(st);
    free(f);
    free_spec(&s);
}

static void test_oom(void) {
    spec s;
    make_spec(&s, 30, 16, 24, 2, 1, 8, 2, 1, 1);
    size_t len;
    uint8_t *f = write_st(&s, NULL, NULL, &len);
    char cfg[1024];
    size_t cl = config_of(&s, NULL, cfg, sizeof cfg);
    tl_safetensors *st = NULL;
    CHECK(tl_safetensors_open(f, len, &st) == TL_OK, "open");
    size_t bytes = tl_mem_live_bytes(), blocks = tl_mem_live_blocks();
    int bad = 0, ok = 0;
    size_t n;
    for (n = 1; n < 2000 && !ok; n++) {
        tl_lm *lm = NULL;
        tl_mem_fail_after(n);
        tl_status r = tl_lm_load(cfg, cl, st, TL_FORMAT_I2, 16, &lm);
        uint32_t tok[3] = {1, 2, 3};
        float lg[30];
        if (r == TL_OK) r = tl_lm_forward(lm, tok, 3, 0, lg, 30);
        tl_mem_fail_after(0);
        if (r != TL_OK && r != TL_ERR_NO_MEMORY) bad++;
        if (lm && r == TL_ERR_NO_MEMORY) { /* a failed forward: the model still runs */
            if (tl_lm_position(lm) != 0 || tl_lm_forward(lm, tok, 3, 0, lg, 30) != TL_OK) bad++;
        }
        ok = r == TL_OK;
        tl_lm_free(lm);
        if (tl_mem_live_bytes() != bytes || tl_mem_live_blocks() != blocks) bad++;
    }
    CHECK(ok && !bad && n > 2, "out of memory over load + forward: %zu allocations, %d bad outcomes", n, bad);
    tl_safetensors_free(st);
    free(f);
    free_spec(&s);
}

static void test_sample(void) {
    float lg[6] = {0.5f, 2.0f, 1.0f, 2.0f, -1.0f, 0.0f};
    uint32_t st = 7, tok = 99;
    CHECK(tl_lm_sample(lg, 6, 0.0f, 0, 1.0f, &st, &tok) == TL_OK && tok == 1 && st == 7, "greedy: first largest");
    CHECK(tl_lm_sample(lg, 6, 1.0f, 1, 1.0f, &st, &tok) == TL_OK && tok == 1, "top_k 1 is greedy");
    /* top_k 2: only ids 1 and 3 (the two largest), about half each */
    int count[6] = {0};
    for (int i = 0; i < 2000; i++) {
        tl_lm_sample(lg, 6, 1.0f, 2, 1.0f, &st, &tok);
        count[tok]++;
    }
    CHECK(count[1] + count[3] == 2000 && count[1] > 850 && count[3] > 850, "top_k 2: %d %d", count[1], count[3]);
    /* temperature 1, everything: frequencies follow softmax */
    memset(count, 0, sizeof count);
    for (int i = 0; i < 20000; i++) {
        tl_lm_sample(lg, 6, 1.0f, 0, 1.0f, &st, &tok);
        count[tok]++;
    }
    double z = 0;
    for (int i = 0; i < 6; i++) z += exp(lg[i]);
    int fits = 1;
    for (int i = 0; i < 6; i++) fits &= fabs(count[i] / 20000.0 - exp(lg[i]) / z) < 0.015;
    CHECK(fits, "softmax frequencies: %d %d %d %d %d %d", count[0], count[1], count[2], count[3], count[4], count[5]);
    /* top_p: 0.5 keeps the smallest prefix with half the mass: ids 1 and 3 (ties by id) */
    memset(count, 0, sizeof count);
    for (int i = 0; i < 2000; i++) {
        tl_lm_sample(lg, 6, 1.0f, 0, 0.5f, &st, &tok);
        count[tok]++;
    }
    CHECK(count[1] + count[3] == 2000, "top_p 0.5: %d %d", count[1], count[3]);
    /* the same state, the same draws */
    uint32_t a = 42, b = 42, ta, tb;
    int same = 1;
    for (int i = 0; i < 50; i++) {
        tl_lm_sample(lg, 6, 0.7f, 0, 0.9f, &a, &ta);
        tl_lm_sample(lg, 6, 0.7f, 0, 0.9f, &b, &tb);
        same &= ta == tb;
    }
    CHECK(same && a == b, "seeded: the same tokens");
    CHECK(tl_lm_sample(lg, 6, -1.0f, 0, 1.0f, &st, &tok) == TL_ERR_ARGUMENT, "negative temperature");
    CHECK(tl_lm_sample(lg, 6, 1.0f, 0, 0.0f, &st, &tok) == TL_ERR_ARGUMENT, "top_p 0");
    CHECK(tl_lm_sample(lg, 0, 1.0f, 0, 1.0f, &st, &tok) == TL_ERR_EMPTY, "empty");
    lg[2] = NAN;
    CHECK(tl_lm_sample(lg, 6, 1.0f, 0, 1.0f, &st, &tok) == TL_ERR_NON_FINITE, "NaN");
}

int main(void) {
    test_models();
    test_errors();
    test_save();
    test_load_owned();
    test_load_owned_moved();
    test_oom();
    test_no_growth();
    test_sample();
    return check_report("test_lm");
}

/* test_lm_import.c — the language model's importers in every build: Hugging Face packed BitNet
 * checkpoints (src/lm.c) and GGUF files (src/gguf.c: TQ1_0, TQ2_0, I2_S), written here from a
 * float model and read back to the same logits; every hostile GGUF (truncated at every byte,
 * bytes flipped, oversized counts and dimensions, unknown types, versions) refused with a status
 * and a detail, never a crash (the ASan+UBSan builds check the reads). The PyTorch goldens
 * through these importers are checked by test/js/lm-import.test.js. */
#include <math.h>

#include "check.h"
#include "gguf.h"
#include "internal.h"

typedef struct {
    size_t V, D, F, H, KV, hd, L;
    int tied, relu2;
} shape;

#define MAXT 64
typedef struct {
    char name[MAXT][96];
    tl__st_entry e[MAXT];
    float *v[MAXT];
    uint8_t *u8[MAXT];
    size_t n;
} tensors;

static float frand(float sd) { return sd * (((float)(check_rnd() >> 8) / 16777216.0f) * 2.0f - 1.0f); }

static void add_f32(tensors *t, const char *name, size_t d0, size_t d1, float base, float sd) {
    size_t n = d1 ? d0 * d1 : d0, i = t->n++;
    snprintf(t->name[i], 96, "%s", name);
    t->v[i] = malloc(n * 4);
    for (size_t k = 0; k < n; k++) t->v[i][k] = base + frand(sd);
    t->e[i] = (tl__st_entry){t->name[i], TL_DTYPE_F32, d1 ? 2 : 1, {d0, d1}, t->v[i], n * 4, NULL};
}

static const char *projs[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                              "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

static void make(tensors *t, const shape *s) {
    memset(t, 0, sizeof *t);
    char n[96];
    size_t Q = s->H * s->hd, K = s->KV * s->hd;
    add_f32(t, "model.embed_tokens.weight", s->V, s->D, 0, 1.0f);
    add_f32(t, "model.norm.weight", s->D, 0, 1, 0.1f);
    if (!s->tied) add_f32(t, "lm_head.weight", s->V, s->D, 0, 0.2f);
    for (size_t l = 0; l < s->L; l++) {
        const size_t rows[7] = {Q, K, K, s->D, s->F, s->F, s->D},
                     cols[7] = {s->D, s->D, s->D, Q, s->D, s->D, s->F};
#define N(suffix) (snprintf(n, sizeof n, "model.layers.%zu.%s", l, suffix), n)
        add_f32(t, N("input_layernorm.weight"), s->D, 0, 1, 0.1f);
        add_f32(t, N("self_attn.attn_sub_norm.weight"), Q, 0, 1, 0.1f);
        add_f32(t, N("post_attention_layernorm.weight"), s->D, 0, 1, 0.1f);
        add_f32(t, N("mlp.ffn_sub_norm.weight"), s->F, 0, 1, 0.1f);
        for (int p = 0; p < 7; p++) {
            char pn[32];
            snprintf(pn, sizeof pn, "%s.weight", projs[p]);
            add_f32(t, N(pn), rows[p], cols[p], 0, 0.2f);
        }
#undef N
    }
}

static void drop(tensors *t) {
    for (size_t i = 0; i < t->n; i++) free(t->v[i]), free(t->u8[i]);
}

static size_t config(const shape *s, const char *extra, char *out, size_t cap) {
    return (size_t)snprintf(
        out, cap,
        "{\"vocab_size\":%zu,\"hidden_size\":%zu,\"intermediate_size\":%zu,\"num_hidden_layers\":%zu,"
        "\"num_attention_heads\":%zu,\"num_key_value_heads\":%zu,\"head_dim\":%zu,"
        "\"max_position_embeddings\":64,\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,"
        "\"hidden_act\":\"%s\",\"tie_word_embeddings\":%s,\"bos_token_id\":1,\"eos_token_id\":2%s}",
        s->V, s->D, s->F, s->L, s->H, s->KV, s->hd, s->relu2 ? "relu2" : "silu", s->tied ? "true" : "false",
        extra ? extra : "");
}

static tl_status load_st(const tensors *t, const shape *s, const char *extra, tl_lm **out) {
    uint8_t *f = NULL;
    size_t len = 0;
    char cfg[2048];
    size_t cl = config(s, extra, cfg, sizeof cfg);
    tl_safetensors *st = NULL;
    tl_status r = tl__safetensors_write(t->e, t->n, NULL, 0, &f, &len);
    if (!r) r = tl_safetensors_open(f, len, &st);
    if (!r) r = tl_lm_load(cfg, cl, st, TL_FORMAT_I2, 32, out);
    tl_safetensors_free(st);
    tl_free(f);
    return r;
}

/* logits of a fixed token sequence (all positions), after a reset */
static float *run(tl_lm *lm, size_t V, int int8) {
    enum { N = 12 };
    uint32_t tok[N];
    for (size_t i = 0; i < N; i++) tok[i] = (uint32_t)((i * 7 + 3) % V);
    float *out = malloc(N * V * 4);
    tl_lm_set_precision(lm, int8 ? TL_PRECISION_INT8 : TL_PRECISION_FLOAT);
    tl_lm_reset(lm);
    CHECK(tl_lm_forward(lm, tok, N, 1, out, N * V) == TL_OK, "forward: %s", tl_error_detail());
    return out;
}

static double rel(const float *a, const float *b, size_t n) {
    double mx = 0, d = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(a[i])), d = fmax(d, fabs((double)a[i] - b[i]));
    return d / mx;
}

static int same(tl_lm *a, tl_lm *b, size_t V) {
    int ok = 1;
    for (int int8 = 0; int8 < 2; int8++) {
        float *x = run(a, V, int8), *y = run(b, V, int8);
        ok &= !memcmp(x, y, 12 * V * 4);
        free(x), free(y);
    }
    return ok;
}

/* ---------------------------------------------------------------------------
 * Hugging Face packed checkpoints
 * ------------------------------------------------------------------------- */

/* t with every projection replaced by its HF packing (U8 [rows / 4, cols]) and a weight_scale
 * (F32 [1]: alpha, or 1 / alpha for bitlinear); bad_code: one code 3 in the first projection. */
static void hf_pack(tensors *t, int autobit, int bad_code) {
    size_t n0 = t->n;
    for (size_t i = 0; i < n0; i++) {
        if (!strstr(t->name[i], "_proj.")) continue;
        size_t rows = t->e[i].shape[0], cols = t->e[i].shape[1], P = rows / 4;
        int8_t *tr = malloc(rows * cols);
        float alpha;
        CHECK(tl_ternary_signs(t->v[i], rows * cols, tr, &alpha) == TL_OK, "signs");
        uint8_t *p = calloc(P * cols, 1);
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++)
                p[(r % P) * cols + c] |= (uint8_t)((tr[r * cols + c] + 1) << (2 * (r / P)));
        if (bad_code) p[5] |= 3, bad_code = 0;
        free(tr);
        t->u8[i] = p;
        t->e[i] = (tl__st_entry){t->name[i], TL_DTYPE_U8, 2, {P, cols}, p, P * cols, NULL};
        size_t k = t->n++;
        snprintf(t->name[k], 96, "%.*s_scale", (int)strlen(t->name[i]), t->name[i]);
        t->v[k] = malloc(4);
        t->v[k][0] = autobit ? alpha : 1.0f / alpha;
        t->e[k] = (tl__st_entry){t->name[k], TL_DTYPE_F32, 1, {1, 0}, t->v[k], 4, NULL};
    }
}

static void test_hf(void) {
    const shape shapes[] = {{61, 32, 80, 4, 2, 8, 2, 1, 1}, {50, 48, 96, 3, 3, 16, 1, 0, 0}};
    for (size_t k = 0; k < 2; k++) {
        const shape *s = &shapes[k];
        for (int autobit = 0; autobit < 2; autobit++) {
            uint32_t seed = check_rng;
            tensors t;
            make(&t, s);
            tl_lm *fl = NULL, *hf = NULL;
            CHECK(load_st(&t, s, NULL, &fl) == TL_OK, "float: %s", tl_error_detail());
            hf_pack(&t, autobit, 0);
            const char *q = autobit ? ",\"quantization_config\":{\"quant_method\":\"bitnet\",\"linear_"
                                      "class\":\"autobitlinear\","
                                      "\"quantization_mode\":\"offline\"}"
                                    : ",\"quantization_config\":{\"quant_method\":\"bitnet\"}";
            CHECK(load_st(&t, s, q, &hf) == TL_OK, "hf packed: %s", tl_error_detail());
            if (fl && hf) {
                if (autobit)
                    CHECK(same(fl, hf, s->V), "autobitlinear (output x weight_scale): the same logits as the "
                                              "float file, bit for bit");
                else {
                    /* alpha = 1 / (1 / alpha) may be an ulp away */
                    float *x = run(fl, s->V, 0), *y = run(hf, s->V, 0);
                    CHECK(rel(x, y, 12 * s->V) < 1e-5,
                          "bitlinear (output / weight_scale): the float file's logits (%g)",
                          rel(x, y, 12 * s->V));
                    free(x), free(y);
                }
            }
            tl_lm_free(fl), tl_lm_free(hf);
            /* the other direction gives other logits: the scale's direction is not a no-op */
            hf = NULL;
            const char *wrong =
                autobit
                    ? ",\"quantization_config\":{\"quant_method\":\"bitnet\",\"linear_class\":\"bitlinear\"}"
                    : ",\"quantization_config\":{\"quant_method\":\"bitnet\",\"linear_class\":"
                      "\"autobitlinear\"}";
            CHECK(load_st(&t, s, wrong, &hf) == TL_OK, "wrong class loads");
            if (hf) {
                tensors t2;
                check_rng = seed;
                make(&t2, s);
                tl_lm *fl2 = NULL;
                load_st(&t2, s, NULL, &fl2);
                float *x = run(fl2, s->V, 0), *y = run(hf, s->V, 0);
                CHECK(rel(x, y, 12 * s->V) > 1e-2, "the wrong linear_class changes the logits");
                free(x), free(y);
                tl_lm_free(fl2), drop(&t2);
            }
            tl_lm_free(hf);
            /* without quantization_config the U8 tensors are no float weights */
            hf = NULL;
            CHECK(load_st(&t, s, NULL, &hf) == TL_ERR_SHAPE,
                  "packed projections without quantization_config: SHAPE (%s)", tl_error_detail());
            drop(&t);
        }
    }
    /* errors: a code 3, a missing scale, a scale of 0, other quantization configs */
    const shape *s = &shapes[0];
    tensors t;
    tl_lm *m = NULL;
    const char *q = ",\"quantization_config\":{\"quant_method\":\"bitnet\"}";
    make(&t, s);
    hf_pack(&t, 0, 1);
    tl_error_clear();
    CHECK(load_st(&t, s, q, &m) == TL_ERR_FORMAT && strstr(tl_error_detail(), "code 3"),
          "code 3: FORMAT (%s)", tl_error_detail());
    drop(&t);
    make(&t, s);
    hf_pack(&t, 0, 0);
    t.n--; /* the last weight_scale */
    CHECK(load_st(&t, s, q, &m) == TL_ERR_PARSE && strstr(tl_error_detail(), "weight_scale"),
          "no scale: PARSE (%s)", tl_error_detail());
    t.n++;
    t.v[t.n - 1][0] = 0.0f;
    CHECK(load_st(&t, s, q, &m) == TL_ERR_ALPHA, "scale 0: ALPHA (%s)", tl_error_detail());
    t.v[t.n - 1][0] = 1.0f;
    CHECK(load_st(&t, s, ",\"quantization_config\":{\"quant_method\":\"gptq\"}", &m) == TL_ERR_PARSE,
          "gptq: PARSE");
    CHECK(load_st(&t, s, ",\"quantization_config\":{\"quant_method\":\"bitnet\",\"linear_class\":\"x\"}",
                  &m) == TL_ERR_PARSE,
          "unknown linear_class: PARSE");
    CHECK(load_st(&t, s, ",\"quantization_config\":{\"quant_method\":\"bitnet\",\"use_rms_norm\":true}",
                  &m) == TL_ERR_PARSE,
          "use_rms_norm: PARSE");
    drop(&t);
    /* online mode: float weights quantized on load, as without the key */
    make(&t, s);
    tl_lm *a = NULL, *b = NULL;
    load_st(&t, s, NULL, &a);
    CHECK(load_st(&t, s,
                  ",\"quantization_config\":{\"quant_method\":\"bitnet\",\"quantization_mode\":\"online\"}",
                  &b) == TL_OK,
          "online: %s", tl_error_detail());
    if (a && b) CHECK(same(a, b, s->V), "online mode: the float file's model");
    tl_lm_free(a), tl_lm_free(b);
    drop(&t);
}

/* bf16 bits of x, rounded to nearest even */
static uint16_t bf16_of(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* tensor i of t stored as BF16 (its float32 values become the BF16 ones) */
static void to_bf16(tensors *t, size_t i) {
    size_t n = t->e[i].nbytes / 4;
    uint16_t *h = malloc(n * 2);
    for (size_t k = 0; k < n; k++) {
        h[k] = bf16_of(t->v[i][k]);
        uint32_t u = (uint32_t)h[k] << 16;
        memcpy(&t->v[i][k], &u, 4);
    }
    free(t->u8[i]);
    t->u8[i] = (uint8_t *)h;
    t->e[i].dtype = TL_DTYPE_BF16, t->e[i].data = h, t->e[i].nbytes = n * 2;
}

/* The file of t's tensors in the order `rank` gives (lower first, then t's order), in tl memory. */
static uint8_t *write_ordered(const tensors *t, int (*rank)(const char *), size_t *len) {
    tl__st_entry e[MAXT];
    size_t n = 0;
    for (int r = 0; r < 4; r++)
        for (size_t i = 0; i < t->n; i++)
            if (rank(t->name[i]) == r) e[n++] = t->e[i];
    uint8_t *f = NULL;
    CHECK(n == t->n && tl__safetensors_write(e, n, NULL, 0, &f, len) == TL_OK, "write");
    return f;
}
static int is_table(const char *n) { return !strcmp(n, "model.embed_tokens.weight") || !strcmp(n, "lm_head.weight"); }
static int rank_as_made(const char *n) { (void)n; return 0; }
/* the 2-byte scales first: every tensor after them 12 bytes past a 16-byte boundary */
static int rank_scales_first(const char *n) { return strstr(n, "_scale") ? 0 : 1; }
/* then the norms, the tables, the projections: the first projection's 12 bytes below are a table's */
static int rank_table_below(const char *n) {
    return strstr(n, "_scale") ? 0 : is_table(n) ? 2 : strstr(n, "_proj.") ? 3 : 1;
}

static uint8_t *tl_copy(const uint8_t *f, size_t len) {
    uint8_t *b = tl_alloc(len);
    if (b) memcpy(b, f, len);
    return b;
}

/* tl_lm_load_owned of a Hugging Face checkpoint: its projections' i2 rows written over their U8
 * bytes and its BF16 tables made float16 where they lie, however the file's tensors lie; the same
 * model as a copying load (the same packed file saved from both), minus the bytes left in the file. */
static void test_hf_in_place(void) {
    static int (*const orders[3])(const char *) = {rank_as_made, rank_scales_first, rank_table_below};
    static const char *order_names[3] = {"aligned", "12 bytes off", "12 bytes off below a table"};
    const char *q = ",\"quantization_config\":{\"quant_method\":\"bitnet\"}";
    for (int tied = 0; tied < 2; tied++)
        for (int emb = 0; emb < 2; emb++)
            for (int o = 0; o < 3; o++) {
                const shape sh = {96, 64, 128, 4, 2, 16, 2, tied, 1};
                tensors t;
                make(&t, &sh);
                hf_pack(&t, 0, 0);
                size_t proj_bytes = 0, first_proj = 0;
                for (size_t i = 0; i < t.n; i++) {
                    if (is_table(t.name[i]) || strstr(t.name[i], "_scale")) to_bf16(&t, i);
                    if (strstr(t.name[i], "_proj.") && !strstr(t.name[i], "_scale")) {
                        proj_bytes += t.e[i].nbytes;
                        if (!first_proj) first_proj = t.e[i].nbytes; /* layer 0's q_proj */
                    }
                }
                char cfg[2048], extra[160];
                snprintf(extra, sizeof extra, "%s%s", q, emb ? ",\"tilelli_embedding\":\"float16\"" : "");
                size_t cl = config(&sh, extra, cfg, sizeof cfg), len = 0;
                uint8_t *file = write_ordered(&t, orders[o], &len);
                const char *what = order_names[o];
                /* the copying load */
                size_t base = tl_mem_live_bytes();
                tl_safetensors *st = NULL;
                tl_lm *copy = NULL, *lm = NULL;
                CHECK(file && tl_safetensors_open(file, len, &st) == TL_OK &&
                          tl_lm_load(cfg, cl, st, TL_FORMAT_I2, 32, &copy) == TL_OK,
                      "%s: copying load: %s", what, tl_error_detail());
                tl_safetensors_free(st);
                size_t held_copy = tl_mem_live_bytes() - base;
                uint8_t *b = tl_copy(file, len);
                size_t with_file = tl_mem_live_bytes();
                CHECK(tl_lm_load_owned(cfg, cl, b, len, TL_FORMAT_I2, 32, &lm) == TL_OK, "%s: owned load: %s", what,
                      tl_error_detail());
                size_t held_owned = tl_mem_live_bytes() - with_file;
                /* in the file: every projection (but the one below a table) and the float16 tables */
                size_t in_file = proj_bytes - (emb && o == 2 ? first_proj : 0) + (emb ? (2 - (size_t)tied) * 96 * 64 * 2 : 0);
                CHECK(held_owned + in_file == held_copy,
                      "%s, %s, %s table: the owned load holds %zu bytes less (%zu against %zu)", what,
                      tied ? "tied" : "untied", emb ? "float16" : "float32", in_file, held_owned, held_copy);
                uint8_t *pa = NULL, *pb = NULL;
                size_t la = 0, lb = 0;
                CHECK(copy && lm && tl_lm_save(copy, &pa, &la) == TL_OK && tl_lm_save(lm, &pb, &lb) == TL_OK &&
                          la == lb && !memcmp(pa, pb, la),
                      "%s, %s: the same model (the same packed file)", what, tied ? "tied" : "untied");
                if (copy && lm) CHECK(same(copy, lm, sh.V), "%s: the same logits", what);
                tl_free(pa), tl_free(pb);
                tl_lm_free(lm), tl_lm_free(copy), lm = NULL;
                CHECK(tl_mem_live_bytes() == base, "%s: freeing the model frees its file", what);
                if (o == 2 && emb) {
                    /* out of memory at every allocation (the clash's buffer, the scratch among them) */
                    int bad = 0, done = 0;
                    for (size_t n = 1; n < 600 && !done; n++) {
                        b = tl_copy(file, len);
                        tl_mem_fail_after(n);
                        tl_status r = tl_lm_load_owned(cfg, cl, b, len, TL_FORMAT_I2, 32, &lm);
                        tl_mem_fail_after(0);
                        if (r == TL_OK) done = 1, tl_lm_free(lm), lm = NULL;
                        else bad += r != TL_ERR_NO_MEMORY || lm != NULL, tl_free(b);
                        bad += tl_mem_live_bytes() != base;
                    }
                    CHECK(done && !bad, "%s: out of memory over the owned load: %d bad outcomes", what, bad);
                    /* a code 3: refused with where it is, as the copying load does */
                    size_t i = 0;
                    const uint8_t *d = file;
                    CHECK(tl_safetensors_open(file, len, &st) == TL_OK &&
                              tl_safetensors_find(st, "model.layers.1.mlp.up_proj.weight", 33, &i) == TL_OK,
                          "find up_proj");
                    tl_safetensors_tensor(st, i, NULL, NULL, NULL, NULL, NULL, &d, NULL);
                    size_t at = (size_t)(d - file) + 2 * 64 + 5; /* packed row 2, column 5 */
                    tl_safetensors_free(st);
                    b = tl_copy(file, len);
                    b[at] = (uint8_t)((b[at] & ~0x30u) | 0x30u); /* bits 4-5: row 2 x 32 + 2 */
                    tl_error_clear();
                    tl_status r = tl_lm_load_owned(cfg, cl, b, len, TL_FORMAT_I2, 32, &lm);
                    CHECK(r == TL_ERR_FORMAT && !lm && strstr(tl_error_detail(), "up_proj") &&
                              strstr(tl_error_detail(), "row 66 column 5"),
                          "code 3: %d %s", r, tl_error_detail());
                    tl_free(b);
                    /* a BF16 table value beyond float16: refused (OVERFLOW), the file the caller's */
                    CHECK(tl_safetensors_open(file, len, &st) == TL_OK &&
                              tl_safetensors_find(st, "model.embed_tokens.weight", 25, &i) == TL_OK,
                          "find the table");
                    tl_safetensors_tensor(st, i, NULL, NULL, NULL, NULL, NULL, &d, NULL);
                    at = (size_t)(d - file) + 2 * 77;
                    tl_safetensors_free(st);
                    b = tl_copy(file, len);
                    b[at] = 0x80, b[at + 1] = 0x47; /* 65536 */
                    r = tl_lm_load_owned(cfg, cl, b, len, TL_FORMAT_I2, 32, &lm);
                    CHECK(r == TL_ERR_OVERFLOW && !lm && strstr(tl_error_detail(), "element 77") &&
                              tl_mem_live_bytes() == base + len,
                          "a value beyond float16: %d %s", r, tl_error_detail());
                    tl_free(b);
                }
                tl_free(file);
                CHECK(tl_mem_live_bytes() + len == base, "%s: nothing left", what);
                drop(&t);
            }
}

/* ---------------------------------------------------------------------------
 * GGUF
 * ------------------------------------------------------------------------- */

static tl_status gguf_of(tl_lm *lm, uint32_t type, uint8_t **f, size_t *len) {
    return tl_lm_save_gguf(lm, type, 0, f, len);
}

static void test_gguf_roundtrip(void) {
    const shape shapes[] = {{64, 256, 512, 4, 2, 64, 2, 1, 1}, {40, 256, 256, 2, 2, 128, 1, 0, 0}};
    for (size_t k = 0; k < 2; k++) {
        const shape *s = &shapes[k];
        tensors t;
        make(&t, s);
        tl_lm *a = NULL;
        CHECK(load_st(&t, s, NULL, &a) == TL_OK, "float: %s", tl_error_detail());
        uint8_t *f2 = NULL, *f1 = NULL, *fi = NULL, *again = NULL;
        size_t l2, l1, li, la;
        tl_lm *b2 = NULL, *b1 = NULL, *bi = NULL;
        CHECK(gguf_of(a, TL_GGUF_I2_S, &fi, &li) == TL_OK, "write I2_S: %s", tl_error_detail());
        CHECK(tl_lm_load_gguf(fi, li, TL_FORMAT_I2, 32, &bi) == TL_OK, "read I2_S: %s", tl_error_detail());
        if (bi) CHECK(same(a, bi, s->V), "I2_S (a float32 scale per tensor): the same logits, bit for bit");
        CHECK(gguf_of(a, TL_GGUF_TQ2_0, &f2, &l2) == TL_OK, "write TQ2_0: %s", tl_error_detail());
        CHECK(tl_lm_load_gguf(f2, l2, TL_FORMAT_I2, 32, &b2) == TL_OK, "read TQ2_0: %s", tl_error_detail());
        CHECK(l2 > li && l2 < li + li / 25,
              "TQ2_0 (%zu bytes) a little over I2_S (%zu): 66 bytes per 256 weights", l2, li);
        if (b2) {
            float *x = run(a, s->V, 0), *y = run(b2, s->V, 0);
            CHECK(rel(x, y, 12 * s->V) < 2e-3, "TQ2_0 (float16 scales): within 2e-3 of the float file (%g)",
                  rel(x, y, 12 * s->V));
            free(x), free(y);
            /* TQ2_0 -> TQ1_0 -> read: the same trits and float16 scales, the same logits */
            CHECK(gguf_of(b2, TL_GGUF_TQ1_0, &f1, &l1) == TL_OK, "write TQ1_0: %s", tl_error_detail());
            CHECK(l1 < l2, "TQ1_0 (%zu bytes) under TQ2_0 (%zu)", l1, l2);
            CHECK(tl_lm_load_gguf(f1, l1, TL_FORMAT_TQ1, 32, &b1) == TL_OK, "read TQ1_0: %s",
                  tl_error_detail());
            if (b1) CHECK(same(b2, b1, s->V), "TQ1_0 of the TQ2_0 model: the same logits, bit for bit");
            /* written again from what was read: the same bytes */
            CHECK(gguf_of(b2, TL_GGUF_TQ2_0, &again, &la) == TL_OK && la == l2 && !memcmp(again, f2, l2),
                  "TQ2_0 read and written again: the same file");
            /* I2_S from the TQ2_0 model: one scale per tensor still (per-tensor quantization) */
            tl_free(again), again = NULL;
            CHECK(gguf_of(b2, TL_GGUF_I2_S, &again, &la) == TL_OK, "I2_S of the TQ2_0 model");
        }
        /* save() of a GGUF-loaded model: the packed tilelli file loads to the same model */
        if (bi) {
            uint8_t *p = NULL;
            size_t pl;
            tl_safetensors *st = NULL;
            tl_lm *c = NULL;
            CHECK(tl_lm_save(bi, &p, &pl) == TL_OK && tl_safetensors_open(p, pl, &st) == TL_OK &&
                      tl_lm_load(NULL, 0, st, TL_FORMAT_I2, 32, &c) == TL_OK,
                  "GGUF -> tilelli-lm: %s", tl_error_detail());
            if (c) CHECK(same(bi, c, s->V), "GGUF -> tilelli-lm: the same logits");
            tl_lm_free(c), tl_safetensors_free(st), tl_free(p);
        }
        tl_lm_free(a), tl_lm_free(b2), tl_lm_free(b1), tl_lm_free(bi);
        tl_free(f2), tl_free(f1), tl_free(fi), tl_free(again);
        drop(&t);
    }
    /* shapes a type cannot hold: TQ needs 256-weight rows */
    const shape s = {61, 32, 80, 4, 2, 8, 1, 1, 1};
    tensors t;
    make(&t, &s);
    tl_lm *a = NULL, *b = NULL;
    load_st(&t, &s, NULL, &a);
    uint8_t *f = NULL;
    size_t len;
    CHECK(gguf_of(a, TL_GGUF_TQ2_0, &f, &len) == TL_ERR_ARGUMENT && strstr(tl_error_detail(), "TQ2_0"),
          "TQ2_0 of 32-wide rows: ARGUMENT (%s)", tl_error_detail());
    CHECK(gguf_of(a, 99, &f, &len) == TL_ERR_ARGUMENT, "type 99: ARGUMENT");
    CHECK(gguf_of(a, TL_GGUF_I2_S, &f, &len) == TL_OK, "I2_S of a small model: %s", tl_error_detail());
    CHECK(tl_lm_load_gguf(f, len, TL_FORMAT_BITPLANE, 0, &b) == TL_OK, "read into bitplane: %s",
          tl_error_detail());
    if (b) CHECK(same(a, b, s.V), "I2_S of a small model, read into another format: the same logits");
    tl_lm_free(b);
    tl_free(f);
    /* the placeholder vocabulary: a bigger file that reads to the same model */
    CHECK(tl_lm_save_gguf(a, TL_GGUF_I2_S, TL_LM_GGUF_VOCAB, &f, &len) == TL_OK, "vocab");
    b = NULL;
    CHECK(tl_lm_load_gguf(f, len, TL_FORMAT_I2, 0, &b) == TL_OK, "read with a vocabulary: %s",
          tl_error_detail());
    tl_lm_free(b), tl_free(f);
    tl_lm_free(a);
    drop(&t);
}

/* A hand-made GGUF file: header, metadata, tensor infos (with the row length first). */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;
static void put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) b->p = realloc(b->p, b->cap = (b->n + n) * 2 + 64);
    memcpy(b->p + b->n, d, n), b->n += n;
}
static void u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void str(buf *b, const char *s) { u64(b, strlen(s)), put(b, s, strlen(s)); }

static tl_status open_g(const buf *b) {
    tl_lm *lm = NULL;
    tl_error_clear();
    tl_status s = tl_lm_load_gguf(b->p, b->n, TL_FORMAT_I2, 0, &lm);
    tl_lm_free(lm);
    return s;
}

static void test_gguf_hostile(void) {
    /* a valid small file to cut and flip */
    const shape s = {40, 32, 48, 2, 1, 16, 1, 0, 0};
    tensors t;
    make(&t, &s);
    tl_lm *a = NULL;
    load_st(&t, &s, NULL, &a);
    uint8_t *f = NULL;
    size_t len = 0;
    CHECK(gguf_of(a, TL_GGUF_I2_S, &f, &len) == TL_OK, "write");
    tl_lm_free(a);
    drop(&t);
    int all_refused = 1, all_detailed = 1;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *c = malloc(cut ? cut : 1);
        memcpy(c, f, cut);
        tl_lm *m = NULL;
        tl_error_clear();
        tl_status r = tl_lm_load_gguf(c, cut, TL_FORMAT_I2, 0, &m);
        all_refused &= r == TL_ERR_PARSE;
        all_detailed &= tl_error_detail()[0] != 0;
        tl_lm_free(m);
        free(c);
    }
    CHECK(all_refused, "every truncation of a %zu-byte file: PARSE", len);
    CHECK(all_detailed, "every truncation: a detail");
    /* one byte changed at a time, anywhere: loads or fails with a status (ASan watches) */
    int statuses = 1;
    uint8_t *c = malloc(len);
    for (size_t i = 0; i < 3000; i++) {
        memcpy(c, f, len);
        size_t at = check_rnd() % len;
        c[at] = (uint8_t)check_rnd();
        if (i % 3 == 0) c[check_rnd() % (len < 600 ? len : 600)] = 0xFF; /* the header and infos more often */
        tl_lm *m = NULL;
        tl_status r = tl_lm_load_gguf(c, len, TL_FORMAT_I2, 0, &m);
        statuses &= r == TL_OK || (r < 0 && r >= TL_ERR_DTYPE);
        tl_lm_free(m);
    }
    free(c);
    CHECK(statuses, "3000 corrupted files: each loads or returns a status");
    tl_free(f);

    buf b = {0};
    put(&b, "GGUF", 4), u32(&b, 4), u64(&b, 0), u64(&b, 0);
    CHECK(open_g(&b) == TL_ERR_VERSION && strstr(tl_error_detail(), "version 4"), "version 4: VERSION (%s)",
          tl_error_detail());
    b.n = 0;
    put(&b, "GGUF", 4), u32(&b, 3), u64(&b, (uint64_t)1 << 60), u64(&b, 0);
    CHECK(open_g(&b) == TL_ERR_PARSE && strstr(tl_error_detail(), "tensors cannot fit"),
          "2^60 tensors: PARSE (%s)", tl_error_detail());
    b.n = 0;
    put(&b, "GGUF", 4), u32(&b, 3), u64(&b, 0), u64(&b, UINT64_MAX);
    CHECK(open_g(&b) == TL_ERR_PARSE, "2^64 - 1 metadata entries: PARSE (%s)", tl_error_detail());
    b.n = 0;
    put(&b, "GGUF", 4), u32(&b, 3), u64(&b, 0), u64(&b, 1);
    str(&b, "general.architecture"), u32(&b, 8), u64(&b, UINT64_MAX - 3);
    CHECK(open_g(&b) == TL_ERR_PARSE && strstr(tl_error_detail(), "runs past the end"),
          "a string of 2^64 - 4 bytes: PARSE (%s)", tl_error_detail());
    b.n = 0;
    put(&b, "GGUF", 4), u32(&b, 3), u64(&b, 0), u64(&b, 1);
    str(&b, "a"), u32(&b, 9), u32(&b, 4), u64(&b, (uint64_t)1 << 62);
    CHECK(open_g(&b) == TL_ERR_PARSE && strstr(tl_error_detail(), "array"),
          "an array of 2^62 u32: PARSE (%s)", tl_error_detail());
    b.n = 0;
    put(&b, "GGUF", 4), u32(&b, 3), u64(&b, 0), u64(&b, 1);
    str(&b, "a"), u32(&b, 9), u32(&b, 9), u64(&b, 1);
    CHECK(open_g(&b) == TL_ERR_PARSE && strstr(tl_error_detail(), "array"), "an array of arrays: PARSE (%s)",
          tl_error_detail());
    b.n = 0;
    put(&b, "GGUF", 4), u32(&b, 3), u64(&b, 0), u64(&b, 1);
    str(&b, "a"), u32(&b, 13);
    u64(&b, 0);
    CHECK(open_g(&b) == TL_ERR_PARSE && strstr(tl_error_detail(), "value type"), "value type 13: PARSE (%s)",
          tl_error_detail());
    /* tensor infos: dimensions whose product overflows, an unknown type, a block-less row, data
     * past the end, overlapping and duplicate tensors, misaligned offsets */
    struct {
        uint64_t ne0, ne1;
        uint32_t type;
        uint64_t off;
        int two;
        uint64_t data;
        tl_status want;
        const char *detail;
    } cases[] = {
        {(uint64_t)1 << 40, (uint64_t)1 << 30, 0, 0, 0, 64, TL_ERR_PARSE, "overflows"},
        {256, 1, 99, 0, 0, 64, TL_ERR_DTYPE, "GGML type 99"},
        {100, 1, TL_GGUF_TQ2_0, 0, 0, 66, TL_ERR_PARSE, "blocks"},
        {96, 1, TL_GGUF_I2_S, 0, 0, 64, TL_ERR_PARSE, "blocks"},
        {256, 4, TL_GGUF_TQ2_0, 0, 0, 66 * 3, TL_ERR_PARSE, "run past the end"},
        {16, 1, 0, 0, 1, 128, TL_ERR_PARSE, "overlap"},
        {16, 1, 0, 0, 2, 128, TL_ERR_PARSE, "two tensors"},
        {16, 1, 0, 8, 0, 128, TL_ERR_PARSE, "alignment"},
        {0, 1, 0, 0, 0, 128, TL_ERR_PARSE, "dimension"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        b.n = 0;
        put(&b, "GGUF", 4), u32(&b, 3), u64(&b, cases[k].two ? 2 : 1), u64(&b, 0);
        str(&b, "x.weight"), u32(&b, 2), u64(&b, cases[k].ne0), u64(&b, cases[k].ne1), u32(&b, cases[k].type),
            u64(&b, cases[k].off);
        if (cases[k].two)
            str(&b, cases[k].two == 2 ? "x.weight" : "y.weight"), u32(&b, 1), u64(&b, 16), u32(&b, 0),
                u64(&b, 32);
        while (b.n % 32) put(&b, "", 1);
        for (uint64_t i = 0; i < cases[k].data; i++) put(&b, "\x55", 1);
        tl_status r = open_g(&b);
        CHECK(r == cases[k].want && strstr(tl_error_detail(), cases[k].detail), "tensor case %zu: %s (%s)", k,
              tl_status_name(r), tl_error_detail());
    }
    free(b.p);
}

/* A GGUF whose ternary rows are unusual: a negative block scale flips the trits, a zero one
 * zeroes them, two different scales in one row are refused, a code 3 is refused. */
static tl_status edit_load(const uint8_t *f, size_t len, uint32_t type, void (*edit)(uint8_t *q),
                           float *logits, size_t V) {
    uint8_t *c = malloc(len);
    memcpy(c, f, len);
    tl__gguf *g = NULL;
    size_t i, nb;
    tl__gguf_open(c, len, &g);
    tl__gguf_find(g, "blk.0.attn_q.weight", &i);
    uint8_t *q = (uint8_t *)(uintptr_t)tl__gguf_tensor_data(g, i, &nb);
    (void)type;
    edit(q);
    tl__gguf_free(g);
    tl_lm *m = NULL;
    tl_error_clear();
    tl_status r = tl_lm_load_gguf(c, len, TL_FORMAT_I2, 0, &m);
    if (!r) {
        float *x = run(m, V, 0);
        memcpy(logits, x, 12 * V * 4);
        free(x);
    }
    tl_lm_free(m);
    free(c);
    return r;
}
/* TQ2_0 blocks of attn_q (2 per 512-wide row... here rows of 256: one block per row) */
static void negate_d(uint8_t *q) { q[65] ^= 0x80; }      /* block 0's f16 sign */
static void zero_d(uint8_t *q) { q[64] = 0, q[65] = 0; } /* block 0's scale 0 */
static void other_d(uint8_t *q) { q[64] ^= 1; }          /* block 0 only: another scale */
static void code3(uint8_t *q) { q[66 + 3] |= 3; }        /* block 1, a weight's code 3 */
static void negate_all(uint8_t *q) {
    for (size_t r = 0; r < 256; r++) q[66 * r + 65] ^= 0x80; /* every row: trits flipped */
}

static void test_gguf_scales(void) {
    const shape s = {32, 256, 256, 2, 2, 128, 1, 1, 1};
    tensors t;
    make(&t, &s);
    tl_lm *a = NULL;
    load_st(&t, &s, NULL, &a);
    drop(&t);
    uint8_t *f = NULL;
    size_t len, V = s.V;
    CHECK(gguf_of(a, TL_GGUF_TQ2_0, &f, &len) == TL_OK, "write");
    float *base = malloc(12 * V * 4), *x = malloc(12 * V * 4);
    tl_lm *b = NULL;
    tl_lm_load_gguf(f, len, TL_FORMAT_I2, 0, &b);
    float *y = run(b, V, 0);
    memcpy(base, y, 12 * V * 4);
    free(y);
    tl_lm_free(b);
    CHECK(edit_load(f, len, 0, negate_d, x, V) == TL_OK, "a negative block scale: %s", tl_error_detail());
    CHECK(memcmp(x, base, 12 * V * 4), "a negative block scale flips that row (other logits)");
    CHECK(edit_load(f, len, 0, zero_d, x, V) == TL_OK, "a zero block scale: %s", tl_error_detail());
    CHECK(memcmp(x, base, 12 * V * 4), "a zero block scale zeroes that row (other logits)");
    /* both flips at once (q = -q for every row) and the sign in the trits: the query rows negated
     * make the scores change sign, so the logits differ; flipping twice is the identity */
    CHECK(edit_load(f, len, 0, negate_all, x, V) == TL_OK, "all negative: %s", tl_error_detail());
    CHECK(memcmp(x, base, 12 * V * 4), "every query row negated: other logits");
    CHECK(edit_load(f, len, 0, code3, x, V) == TL_ERR_FORMAT && strstr(tl_error_detail(), "code 3"),
          "code 3: FORMAT (%s)", tl_error_detail());
    free(base), free(x), tl_free(f);
    /* two blocks of one row with different scales (rows of 512: two blocks) */
    const shape w = {32, 512, 256, 4, 2, 128, 1, 1, 1};
    make(&t, &w);
    tl_lm *c = NULL;
    load_st(&t, &w, NULL, &c);
    drop(&t);
    CHECK(gguf_of(c, TL_GGUF_TQ2_0, &f, &len) == TL_OK, "write 512");
    x = malloc(12 * w.V * 4);
    CHECK(edit_load(f, len, 0, other_d, x, w.V) == TL_ERR_FORMAT &&
              strstr(tl_error_detail(), "one scale per row"),
          "two scales in a row: FORMAT (%s)", tl_error_detail());
    free(x), tl_free(f);
    tl_lm_free(c), tl_lm_free(a);
}

/* The embedding held as float16 or int8 (config "tilelli_embedding"). */
static tl_status lm_to_st(tl_lm *lm, tl_lm **out) {
    uint8_t *p = NULL;
    size_t pl;
    tl_safetensors *st = NULL;
    tl_status s = tl_lm_save(lm, &p, &pl);
    if (!s) s = tl_safetensors_open(p, pl, &st);
    if (!s) s = tl_lm_load(NULL, 0, st, TL_FORMAT_I2, 32, out);
    tl_safetensors_free(st), tl_free(p);
    return s;
}

static void test_embedding(void) {
    const shape shapes[] = {{300, 256, 256, 4, 2, 64, 1, 1, 1}, {200, 256, 256, 2, 2, 128, 1, 0, 0}};
    for (size_t k = 0; k < 2; k++) {
        const shape *s = &shapes[k];
        tensors t;
        make(&t, s);
        /* the tables' values made float16 values: float16 tables then hold them exactly */
        for (size_t i = 0; i < t.n; i++)
            if (strstr(t.name[i], "embed_tokens") || strstr(t.name[i], "lm_head"))
                for (size_t j = 0; j < t.e[i].nbytes / 4; j++)
                    t.v[i][j] = tl__f16_to_float(tl__f16_from_float(t.v[i][j]));
        size_t m0 = tl_mem_live_bytes();
        tl_lm *f32 = NULL, *f16 = NULL, *i8 = NULL, *back = NULL, *g = NULL;
        CHECK(load_st(&t, s, NULL, &f32) == TL_OK, "float32: %s", tl_error_detail());
        size_t m1 = tl_mem_live_bytes();
        CHECK(load_st(&t, s, ",\"tilelli_embedding\":\"float16\"", &f16) == TL_OK, "float16: %s",
              tl_error_detail());
        size_t m2 = tl_mem_live_bytes();
        CHECK(load_st(&t, s, ",\"tilelli_embedding\":\"int8\"", &i8) == TL_OK, "int8: %s", tl_error_detail());
        size_t m3 = tl_mem_live_bytes(), tab = s->V * s->D * (s->tied ? 1 : 2);
        CHECK((m1 - m0) - (m2 - m1) >= tab * 2 - 64, "float16 tables: %zu bytes less held (%zu x 2 values)",
              (m1 - m0) - (m2 - m1), tab);
        CHECK((m1 - m0) - (m3 - m2) >= tab * 3 - 64 - s->V * 8, "int8 tables: %zu bytes less held",
              (m1 - m0) - (m3 - m2));
        if (f32 && f16)
            CHECK(same(f32, f16, s->V),
                  "float16 tables of float16 values: the float32 model's logits, bit for bit");
        if (f32 && i8) {
            float *x = run(f32, s->V, 0), *y = run(i8, s->V, 0);
            CHECK(rel(x, y, 12 * s->V) < 0.05 && rel(x, y, 12 * s->V) > 0,
                  "int8 tables: near the float32 model's logits (%g)", rel(x, y, 12 * s->V));
            free(x), free(y);
        }
        /* the packed file keeps the form and the numbers */
        if (f16) {
            CHECK(lm_to_st(f16, &back) == TL_OK && same(f16, back, s->V),
                  "float16: save and load, the same logits");
            tl_lm_free(back), back = NULL;
            uint8_t *f = NULL;
            size_t len;
            CHECK(tl_lm_save_gguf(f16, TL_GGUF_I2_S, 0, &f, &len) == TL_OK &&
                      tl_lm_load_gguf(f, len, TL_FORMAT_I2, 32, &g) == TL_OK && same(f16, g, s->V),
                  "float16: GGUF (F16 token_embd) and back, the same logits: %s", tl_error_detail());
            char *d = NULL;
            size_t dl;
            if (g && tl_lm_describe(g, &d, &dl) == TL_OK)
                CHECK(strstr(d, "\"tilelli_embedding\":\"float16\""), "GGUF F16 table read as float16");
            tl_free(d), tl_free(f), tl_lm_free(g), g = NULL;
        }
        if (i8) {
            CHECK(lm_to_st(i8, &back) == TL_OK && same(i8, back, s->V),
                  "int8: save and load, the same logits");
            tl_lm_free(back), back = NULL;
        }
        tl_lm_free(f32), tl_lm_free(f16), tl_lm_free(i8);
        /* errors */
        tl_lm *m = NULL;
        CHECK(load_st(&t, s, ",\"tilelli_embedding\":\"bf16\"", &m) == TL_ERR_PARSE, "bf16: PARSE");
        t.v[0][7] = 1e6f;
        CHECK(load_st(&t, s, ",\"tilelli_embedding\":\"float16\"", &m) == TL_ERR_OVERFLOW &&
                  strstr(tl_error_detail(), "element 7"),
              "1e6 in a float16 table: OVERFLOW (%s)", tl_error_detail());
        drop(&t);
    }
}

/* The head's GEMVs over float16 and int8 tables: the bits of the float32 GEMV over the same values
 * (float16), and of scale x tl__dot_f32 over the int8 values as floats (int8), in every build. */
static void test_head_gemv(void) {
    /* every finite binary16 value: the branch-free widening equals the exact one, and rounds back */
    int exact = 1, back = 1;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7C00u) == 0x7C00u) continue;
        float f = tl__f16_to_float((uint16_t)h);
        exact &= tl__f2u(f) == tl__f16_bits(h);
        back &= tl__f16_from_float(f) == h;
    }
    CHECK(exact, "float16 -> float: every finite value exactly");
    CHECK(back, "float -> float16: every finite value back to its bits");
    const size_t shapes[][2] = {{13, 64}, {8, 40}, {9, 256}, {5, 7}};
    int f16_same = 1, i8_same = 1;
    for (size_t k = 0; k < 4; k++) {
        size_t R = shapes[k][0], C = shapes[k][1];
        uint16_t *h = malloc(R * C * 2);
        int8_t *q = malloc(R * C);
        float *f = malloc(R * C * 4), *x = malloc(C * 4), *a = malloc(R * 4), *b = malloc(R * 4),
              *sc = malloc(R * 4), *row = malloc(C * 4);
        for (size_t i = 0; i < R * C; i++) {
            h[i] = tl__f16_from_float(frand(3.0f)), f[i] = tl__f16_to_float(h[i]);
            q[i] = (int8_t)(check_rnd() % 255 - 127);
        }
        for (size_t i = 0; i < C; i++) x[i] = frand(2.0f);
        for (size_t r = 0; r < R; r++) sc[r] = 0.01f + frand(0.005f);
        tl__gemv_f16(h, R, C, x, a);
        tl__gemv_f32(f, R, C, x, b);
        f16_same &= !memcmp(a, b, R * 4);
        tl__gemv_i8(q, sc, R, C, x, a);
        for (size_t r = 0; r < R; r++) {
            for (size_t c = 0; c < C; c++) row[c] = (float)q[r * C + c];
            b[r] = sc[r] * tl__dot_f32(row, x, C);
        }
        i8_same &= !memcmp(a, b, R * 4);
        free(h), free(q), free(f), free(x), free(a), free(b), free(sc), free(row);
    }
    CHECK(f16_same, "float16 head GEMV: the float32 GEMV's bits over the same values");
    CHECK(i8_same, "int8 head GEMV: scale x tl__dot_f32 over the int8 values, bit for bit");
}

/* llama.cpp's optional "blk.N.<proj>.scale" tensor: a TQ2_0 file with blk.0.attn_q.scale = 2 reads
 * to the model whose attn_q block scales are doubled (f16 exponent + 1), bit for bit. */
static size_t walk_value(const uint8_t *p, uint32_t t) {
    static const uint8_t sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    uint64_t n;
    if (t == 8) return memcpy(&n, p, 8), 8 + (size_t)n;
    if (t != 9) return sz[t];
    uint32_t et;
    memcpy(&et, p, 4), memcpy(&n, p + 4, 8);
    size_t at = 12;
    for (uint64_t i = 0; i < n; i++) at += walk_value(p + at, et);
    return at;
}
static void double_q(uint8_t *q) {
    for (size_t r = 0; r < 256; r++) {
        uint16_t d = (uint16_t)(q[66 * r + 64] | q[66 * r + 65] << 8);
        d = (uint16_t)(d + 0x400);
        q[66 * r + 64] = (uint8_t)d, q[66 * r + 65] = (uint8_t)(d >> 8);
    }
}
static void test_gguf_scale_tensor(void) {
    const shape s = {32, 256, 256, 2, 2, 128, 1, 1, 1};
    tensors t;
    make(&t, &s);
    tl_lm *a = NULL;
    load_st(&t, &s, NULL, &a);
    drop(&t);
    uint8_t *f = NULL;
    size_t len;
    CHECK(gguf_of(a, TL_GGUF_TQ2_0, &f, &len) == TL_OK, "write");
    /* walk the header: counts, metadata, tensor infos */
    uint64_t nt, nkv;
    memcpy(&nt, f + 8, 8), memcpy(&nkv, f + 16, 8);
    size_t at = 24;
    for (uint64_t i = 0; i < nkv; i++) {
        uint64_t kl;
        uint32_t ty;
        memcpy(&kl, f + at, 8), at += 8 + (size_t)kl;
        memcpy(&ty, f + at, 4), at += 4;
        at += walk_value(f + at, ty);
    }
    for (uint64_t i = 0; i < nt; i++) {
        uint64_t nl;
        uint32_t nd;
        memcpy(&nl, f + at, 8), at += 8 + (size_t)nl;
        memcpy(&nd, f + at, 4), at += 4 + 8 * nd + 4 + 8;
    }
    size_t data = (at + 31) / 32 * 32, dlen = len - data;
    /* the new file: one more tensor info, its 4 bytes after the old data */
    buf b = {0};
    put(&b, f, 8);
    u64(&b, nt + 1);
    put(&b, f + 16, at - 16);
    str(&b, "blk.0.attn_q.scale"), u32(&b, 1), u64(&b, 1), u32(&b, 0), u64(&b, dlen);
    while (b.n % 32) put(&b, "", 1);
    put(&b, f + data, dlen);
    float two = 2.0f;
    put(&b, &two, 4);
    tl_lm *with = NULL, *doubled = NULL;
    CHECK(tl_lm_load_gguf(b.p, b.n, TL_FORMAT_I2, 0, &with) == TL_OK, "with a scale tensor: %s",
          tl_error_detail());
    float *x = malloc(12 * s.V * 4);
    CHECK(edit_load(f, len, 0, double_q, x, s.V) == TL_OK, "doubled block scales");
    CHECK(tl_lm_load_gguf(f, len, TL_FORMAT_I2, 0, &doubled) == TL_OK, "base");
    if (with) {
        float *y = run(with, s.V, 0), *z = run(doubled, s.V, 0);
        CHECK(!memcmp(x, y, 12 * s.V * 4),
              "blk.0.attn_q.scale = 2: the model with doubled attn_q scales, bit for bit");
        CHECK(memcmp(z, y, 12 * s.V * 4), "and not the model without it");
        free(y), free(z);
    }
    /* a scale tensor of 0 or of two values is refused */
    memcpy(b.p + b.n - 4, &(float){0.0f}, 4);
    tl_lm *bad = NULL;
    CHECK(tl_lm_load_gguf(b.p, b.n, TL_FORMAT_I2, 0, &bad) == TL_ERR_ALPHA &&
              strstr(tl_error_detail(), "attn_q.scale"),
          "a zero scale tensor: ALPHA (%s)", tl_error_detail());
    free(x), free(b.p), tl_free(f);
    tl_lm_free(with), tl_lm_free(doubled), tl_lm_free(a);
}

int main(void) {
    test_gguf_scale_tensor();
    test_head_gemv();
    test_embedding();
    test_hf();
    test_hf_in_place();
    test_gguf_roundtrip();
    test_gguf_hostile();
    test_gguf_scales();
    return check_report("test_lm_import");
}

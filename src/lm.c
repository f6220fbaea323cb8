/* lm.c — decoder-only transformers with ternary projections: BitNet b1.58 (squared ReLU, sub-norms,
 * Hugging Face BitNetForCausalLM) and Llama-style (SiLU) models, with a KV cache.
 *
 * A model comes from a Hugging Face config.json and a safetensors file of the same names
 * (tl_lm_load): float projections are quantized on load with the reference's per-tensor rule
 * (tl_matrix_quantize), Hugging Face packed BitNet projections (U8 codes + weight_scale) and
 * tilelli's packed file are read without loss; or from a GGUF file (tl_lm_load_gguf: the container
 * is src/gguf.c's, the architectures, names and keys are here). Norms are float32; the embedding
 * and head float32, float16 or int8 (tl__lm_table). The numbers (docs/FORMATS.md,
 * "Language models"):
 *   layer:  x = rmsnorm(h) ; q, k, v = BitLinear(x) ; RoPE(q, k) ; causal attention with grouped
 *           KV heads ; h += o_proj(attn_sub_norm(attention))
 *           x = rmsnorm(h) ; m = act(gate_proj(x)) * up_proj(x) ; h += down_proj(ffn_sub_norm(m))
 *   head:   logits = head . rmsnorm(h) (float32; the embedding when tied)
 * BitLinear with int8 activations (the default) is the per-token absmax quantizer and the exact
 * int8 product, y = fl(fl(fl(acc) * alpha) / s); with float activations the float kernel.
 *
 * Tokens go through in chunks of up to TL__LM_CHUNK (prefill) or one at a time (decode) with the
 * same numbers: every operation is per token, and the kernels give a vector the same outputs at
 * any batch size. After tl_lm_load only the products' workspace grows (once, to the largest product). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "formats.h"
#include "gguf.h"
#include "internal.h"
#include "json.h"

#define TL__LM_CHUNK 16

typedef struct {
    tl_matrix *q, *k, *v, *o, *gate, *up, *down;
    float *in_norm, *attn_norm, *post_norm, *ffn_norm;
} tl__lm_layer;

/* Every per-layer tensor: its Hugging Face name after "model.layers.<i>.", its shape ([d0] or
 * [d0, d1], from the dims of tl__lm_dims), and its place in tl__lm_layer (a norm: float *; a
 * projection: tl_matrix *). The loader's check, the loader and the writer all go by this table. */
enum { TL__DD, TL__DF, TL__DQ, TL__DKV, TL__DNONE };
static const struct {
    const char *name, *gguf; /* llama.cpp's name: "blk.<i>.<gguf>.weight" */
    int d0, d1, proj;
    size_t at;
} tl__lm_tensors[] = {
    {"input_layernorm.weight", "attn_norm", TL__DD, TL__DNONE, 0, offsetof(tl__lm_layer, in_norm)},
    {"self_attn.q_proj.weight", "attn_q", TL__DQ, TL__DD, 1, offsetof(tl__lm_layer, q)},
    {"self_attn.k_proj.weight", "attn_k", TL__DKV, TL__DD, 1, offsetof(tl__lm_layer, k)},
    {"self_attn.v_proj.weight", "attn_v", TL__DKV, TL__DD, 1, offsetof(tl__lm_layer, v)},
    {"self_attn.attn_sub_norm.weight", "attn_sub_norm", TL__DQ, TL__DNONE, 0, offsetof(tl__lm_layer, attn_norm)},
    {"self_attn.o_proj.weight", "attn_output", TL__DD, TL__DQ, 1, offsetof(tl__lm_layer, o)},
    {"post_attention_layernorm.weight", "ffn_norm", TL__DD, TL__DNONE, 0, offsetof(tl__lm_layer, post_norm)},
    {"mlp.gate_proj.weight", "ffn_gate", TL__DF, TL__DD, 1, offsetof(tl__lm_layer, gate)},
    {"mlp.up_proj.weight", "ffn_up", TL__DF, TL__DD, 1, offsetof(tl__lm_layer, up)},
    {"mlp.ffn_sub_norm.weight", "ffn_sub_norm", TL__DF, TL__DNONE, 0, offsetof(tl__lm_layer, ffn_norm)},
    {"mlp.down_proj.weight", "ffn_down", TL__DD, TL__DF, 1, offsetof(tl__lm_layer, down)},
};
#define TL__LM_NTENSORS (sizeof tl__lm_tensors / sizeof *tl__lm_tensors)

/* The token embedding and the LM head, vocab rows of hidden values: float32 (the default, config
 * "tilelli_embedding": "float32"), float16 ("float16": each value rounded to nearest, for a
 * checkpoint's bf16 or f16 table a lossless or near-lossless half of the memory), or int8 ("int8":
 * per row d = max|w| / 127, q = clamp(rint(w / d), -127, 127), value q x d; a quarter of the
 * memory). The embedding of a token is its row's values; a logit is dot(row, h) in float32 (the
 * float32 and float16 tables: the same bits as a float32 table of those values), for int8
 * fl(d x dot(q, h)). */
enum { TL__EMB_F32, TL__EMB_F16, TL__EMB_I8 };
static const char *const tl__emb_names[] = {"float32", "float16", "int8"};
typedef struct {
    void *w;       /* vocab x hidden: float, uint16_t (binary16 bits) or int8_t */
    float *scales; /* int8: vocab values of d */
    int borrowed;  /* w lies in the loaded file (tl_lm_load_owned), not its own */
    int convert;   /* borrowed BF16 values, rewritten as float16 where they lie once the load is sure */
} tl__lm_table;

struct tl_lm {
    size_t vocab, hidden, inter, nlayers, heads, kv_heads, head_dim, context, max_pos;
    float eps, theta;
    int act; /* TL_LM_ACT_* */
    int tied;
    int hf; /* Hugging Face packed BitNet projections: TL__HF_BITLINEAR, TL__HF_AUTOBITLINEAR, or 0 */
    int64_t bos, eos;
    tl_precision prec;
    int emb; /* how the embedding (and an untied head) is held: TL__EMB_* */
    tl__lm_table embed, head_own; /* the head is embed when tied, else head_own (tl__lm_head) */
    float *final_norm;
    tl__lm_layer *layers;
    float *kc, *vc;       /* layers x context x kv_dim */
    float *cos_t, *sin_t; /* context x head_dim / 2 */
    size_t pos;
    /* scratch for TL__LM_CHUNK tokens */
    float *h, *x, *q, *k, *v, *att, *g, *u, *scores, *row;
    int8_t *xq;
    float *xs;
    tl__ws ws;
    uint8_t *file; /* tl_lm_load_owned's file, when its projections and tables lie in it */
    /* tl_lm_load_owned of a Hugging Face checkpoint, until its end: where each projection's U8
     * bytes lie (layer x TL__LM_NTENSORS entries; NULL: the projection has its own bytes) */
    const uint8_t **later;
};

/* The sizes the table's dims name: [TL__DD] hidden, [TL__DF] intermediate, [TL__DQ] heads x
 * head_dim, [TL__DKV] KV heads x head_dim, [TL__DNONE] 0 (a 1-D tensor). */
static void tl__lm_dims(const tl_lm *lm, size_t dims[5]) {
    dims[TL__DD] = lm->hidden, dims[TL__DF] = lm->inter, dims[TL__DQ] = lm->heads * lm->head_dim;
    dims[TL__DKV] = lm->kv_heads * lm->head_dim, dims[TL__DNONE] = 0;
}

/* ---------------------------------------------------------------------------
 * config.json
 * ------------------------------------------------------------------------- */

static tl_status tl__cfg_size(const tl__json *cfg, const char *key, int required, size_t def, size_t max,
                              size_t *out) {
    const tl__json *v = tl__json_find(cfg, key, strlen(key), NULL);
    if (!v) {
        if (required) return tl__fail(TL_ERR_PARSE, "config: \"%s\" is missing", key);
        *out = def;
        return TL_OK;
    }
    int64_t i;
    if (!tl__json_int64(v, &i) || i < 1 || (uint64_t)i > max)
        return tl__fail(TL_ERR_PARSE, "config: \"%s\" must be an integer from 1 to %zu", key, max);
    *out = (size_t)i;
    return TL_OK;
}

static tl_status tl__cfg_float(const tl__json *cfg, const char *key, double def, double lo, double hi, float *out) {
    const tl__json *v = tl__json_find(cfg, key, strlen(key), NULL);
    double d = def;
    if (v) {
        if (tl__json_kind_of(v) != TL__JSON_NUMBER)
            return tl__fail(TL_ERR_PARSE, "config: \"%s\" must be a number", key);
        d = tl__json_number(v);
    }
    if (!(d > lo && d < hi)) return tl__fail(TL_ERR_PARSE, "config: \"%s\" must be in (%g, %g), got %g", key, lo, hi, d);
    *out = (float)d;
    return TL_OK;
}

static tl_status tl__cfg_token(const tl__json *cfg, const char *key, int64_t *out) {
    const tl__json *v = tl__json_find(cfg, key, strlen(key), NULL);
    *out = -1;
    if (!v || tl__json_kind_of(v) == TL__JSON_NULL) return TL_OK;
    /* Llama 3 lists several end-of-sequence ids: the first is the one reported */
    if (tl__json_kind_of(v) == TL__JSON_ARRAY && tl__json_count(v) > 0) v = tl__json_item(v, 0);
    int64_t i;
    if (!tl__json_int64(v, &i) || i < 0) return tl__fail(TL_ERR_PARSE, "config: \"%s\" must be a token id", key);
    *out = i;
    return TL_OK;
}

/* Hugging Face's "quantization_config" of a BitNet checkpoint (transformers' BitNetQuantConfig):
 * quant_method "bitnet"; quantization_mode "offline" (the default: projections stored packed, see
 * tl__lm_hf_proj) or "online" (float weights, quantized here on load as without the key);
 * linear_class "bitlinear" (the default: the output is divided by weight_scale) or
 * "autobitlinear" (multiplied by it). use_rms_norm (a norm inside every BitLinear) is not part of
 * this architecture. Any other quant_method is refused: its weights would be read wrongly. */
enum { TL__HF_BITLINEAR = 1, TL__HF_AUTOBITLINEAR = 2 };
static tl_status tl__lm_quant_config(tl_lm *lm, const tl__json *cfg) {
    const tl__json *q = tl__json_find(cfg, "quantization_config", 19, NULL);
    lm->hf = 0;
    if (!q || tl__json_kind_of(q) == TL__JSON_NULL) return TL_OK;
    if (tl__json_kind_of(q) != TL__JSON_OBJECT) return tl__fail(TL_ERR_PARSE, "config: \"quantization_config\" must be an object");
    if (!tl__json_string_is(tl__json_find(q, "quant_method", 12, NULL), "bitnet"))
        return tl__fail(TL_ERR_PARSE, "config: quantization_config.quant_method must be \"bitnet\" (other methods are not read)");
    const tl__json *mode = tl__json_find(q, "quantization_mode", 17, NULL), *cls = tl__json_find(q, "linear_class", 12, NULL),
                   *rms = tl__json_find(q, "use_rms_norm", 12, NULL);
    if (rms && tl__json_kind_of(rms) == TL__JSON_TRUE)
        return tl__fail(TL_ERR_PARSE, "config: quantization_config.use_rms_norm true is not supported");
    if (mode && !tl__json_string_is(mode, "offline")) {
        if (tl__json_string_is(mode, "online")) return TL_OK;
        return tl__fail(TL_ERR_PARSE, "config: quantization_config.quantization_mode must be \"offline\" or \"online\"");
    }
    if (!cls || tl__json_string_is(cls, "bitlinear"))
        lm->hf = TL__HF_BITLINEAR;
    else if (tl__json_string_is(cls, "autobitlinear"))
        lm->hf = TL__HF_AUTOBITLINEAR;
    else
        return tl__fail(TL_ERR_PARSE, "config: quantization_config.linear_class must be \"bitlinear\" or \"autobitlinear\"");
    return TL_OK;
}

static tl_status tl__lm_config(tl_lm *lm, const tl__json *cfg) {
    if (tl__json_kind_of(cfg) != TL__JSON_OBJECT) return tl__fail(TL_ERR_PARSE, "config: not a JSON object");
    tl_status s;
    if ((s = tl__cfg_size(cfg, "vocab_size", 1, 0, TL_MAX_ELEMENTS, &lm->vocab)) ||
        (s = tl__cfg_size(cfg, "hidden_size", 1, 0, TL_MAX_WIDTH, &lm->hidden)) ||
        (s = tl__cfg_size(cfg, "intermediate_size", 1, 0, TL_MAX_WIDTH, &lm->inter)) ||
        (s = tl__cfg_size(cfg, "num_hidden_layers", 1, 0, 4096, &lm->nlayers)) ||
        (s = tl__cfg_size(cfg, "num_attention_heads", 1, 0, TL_MAX_WIDTH, &lm->heads)) ||
        (s = tl__cfg_size(cfg, "num_key_value_heads", 0, lm->heads, TL_MAX_WIDTH, &lm->kv_heads)) ||
        (s = tl__cfg_size(cfg, "max_position_embeddings", 0, 2048, TL_MAX_ELEMENTS, &lm->max_pos)))
        return s;
    if (lm->heads % lm->kv_heads)
        return tl__fail(TL_ERR_PARSE, "config: num_attention_heads (%zu) is not a multiple of num_key_value_heads (%zu)",
                        lm->heads, lm->kv_heads);
    const tl__json *hd = tl__json_find(cfg, "head_dim", 8, NULL);
    if (hd && tl__json_kind_of(hd) != TL__JSON_NULL) {
        if ((s = tl__cfg_size(cfg, "head_dim", 1, 0, TL_MAX_WIDTH, &lm->head_dim))) return s;
    } else {
        if (lm->hidden % lm->heads)
            return tl__fail(TL_ERR_PARSE, "config: hidden_size (%zu) is not a multiple of num_attention_heads (%zu)",
                            lm->hidden, lm->heads);
        lm->head_dim = lm->hidden / lm->heads;
    }
    if (lm->head_dim % 2) return tl__fail(TL_ERR_PARSE, "config: head_dim (%zu) must be even (RoPE)", lm->head_dim);
    if ((uint64_t)lm->heads * lm->head_dim > TL_MAX_WIDTH)
        return tl__fail(TL_ERR_PARSE, "config: num_attention_heads x head_dim is over %u", (unsigned)TL_MAX_WIDTH);
    if ((s = tl__cfg_float(cfg, "rms_norm_eps", 1e-6, 0.0, 1.0, &lm->eps)) ||
        (s = tl__cfg_float(cfg, "rope_theta", 10000.0, 1.0, 1e30, &lm->theta)))
        return s;
    const tl__json *model_type = tl__json_find(cfg, "model_type", 10, NULL);
    const tl__json *act = tl__json_find(cfg, "hidden_act", 10, NULL);
    if (!act) act = tl__json_find(cfg, "hidden_activation", 17, NULL);
    if (!act)
        lm->act = tl__json_string_is(model_type, "bitnet") ? TL_LM_ACT_RELU2 : TL_LM_ACT_SILU;
    else if (tl__json_string_is(act, "relu2"))
        lm->act = TL_LM_ACT_RELU2;
    else if (tl__json_string_is(act, "silu") || tl__json_string_is(act, "swish"))
        lm->act = TL_LM_ACT_SILU;
    else
        return tl__fail(TL_ERR_PARSE, "config: hidden_act must be \"relu2\" or \"silu\"");
    const tl__json *tie = tl__json_find(cfg, "tie_word_embeddings", 19, NULL);
    if (tie && tl__json_kind_of(tie) != TL__JSON_TRUE && tl__json_kind_of(tie) != TL__JSON_FALSE)
        return tl__fail(TL_ERR_PARSE, "config: \"tie_word_embeddings\" must be true or false");
    lm->tied = tie && tl__json_kind_of(tie) == TL__JSON_TRUE;
    if ((s = tl__cfg_token(cfg, "bos_token_id", &lm->bos)) || (s = tl__cfg_token(cfg, "eos_token_id", &lm->eos)))
        return s;
    if ((s = tl__lm_quant_config(lm, cfg))) return s;
    const tl__json *e = tl__json_find(cfg, "tilelli_embedding", 17, NULL);
    lm->emb = TL__EMB_F32;
    if (e) {
        int k = 0;
        while (k < 3 && !tl__json_string_is(e, tl__emb_names[k])) k++;
        if (k == 3) return tl__fail(TL_ERR_PARSE, "config: \"tilelli_embedding\" must be \"float32\", \"float16\" or \"int8\"");
        lm->emb = k;
    }
    const tl__json *a = tl__json_find(cfg, "tilelli_activations", 19, NULL);
    if (!a || tl__json_string_is(a, "int8"))
        lm->prec = TL_PRECISION_INT8;
    else if (tl__json_string_is(a, "float"))
        lm->prec = TL_PRECISION_FLOAT;
    else
        return tl__fail(TL_ERR_PARSE, "config: \"tilelli_activations\" must be \"int8\" or \"float\"");
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * Tensors
 * ------------------------------------------------------------------------- */

/* Where the loader reads tensors: a safetensors file with Hugging Face names (float projections;
 * Hugging Face packed BitNet ones when lm->hf; tilelli's packed file when pf), or a GGUF file
 * (src/gguf.c) with llama.cpp's names, mapped by tl__lm_gguf_name. */
typedef struct {
    const tl_safetensors *st;
    const tl__gguf *gg;
    tl_format pf;
    int hf;
    int borrow; /* tl_lm_load_owned: a packed file's projections and tables used where they lie, a
                 * Hugging Face checkpoint's converted where they lie (tl__lm_hf_in_place) */
} tl__lm_src;

/* llama.cpp's name of a Hugging Face tensor name (the per-layer ones through tl__lm_tensors). */
static const struct {
    const char *hf, *gguf;
} tl__lm_globals[] = {{"model.embed_tokens.weight", "token_embd.weight"},
                      {"model.norm.weight", "output_norm.weight"},
                      {"lm_head.weight", "output.weight"}};
static int tl__lm_gguf_name(const char *name, char *out, size_t cap) {
    for (size_t k = 0; k < sizeof tl__lm_globals / sizeof *tl__lm_globals; k++)
        if (!strcmp(name, tl__lm_globals[k].hf)) return snprintf(out, cap, "%s", tl__lm_globals[k].gguf), 1;
    unsigned layer;
    int at = 0;
    if (sscanf(name, "model.layers.%u.%n", &layer, &at) != 1 || !at) return 0;
    for (size_t j = 0; j < TL__LM_NTENSORS; j++)
        if (!strcmp(name + at, tl__lm_tensors[j].name)) return snprintf(out, cap, "blk.%u.%s.weight", layer, tl__lm_tensors[j].gguf), 1;
    return 0;
}

/* The tensor `name` with shape [d0] (d1 == 0) or [d0, d1]: its index (in the GGUF file, its
 * llama.cpp name, the dimensions listed row length first). */
static tl_status tl__lm_find(const tl__lm_src *src, const char *name, size_t d0, size_t d1, size_t *index) {
    size_t ndim;
    uint64_t shape[2] = {0, 0};
    const char *shown = name;
    char gn[96];
    if (src->gg) {
        const uint64_t *ne;
        if (!tl__lm_gguf_name(name, gn, sizeof gn) || tl__gguf_find(src->gg, gn, index))
            return tl__fail(TL_ERR_PARSE, "weights: no tensor \"%s\" (%s)", tl__lm_gguf_name(name, gn, sizeof gn) ? gn : name, name);
        tl__gguf_tensor(src->gg, *index, NULL, &ndim, &ne);
        shape[0] = ndim == 2 ? ne[1] : ne[0], shape[1] = ndim == 2 ? ne[0] : 0;
        shown = gn;
    } else {
        const int64_t *sh;
        if (tl_safetensors_find(src->st, name, strlen(name), index)) return tl__fail(TL_ERR_PARSE, "weights: no tensor \"%s\"", name);
        tl_safetensors_tensor(src->st, *index, NULL, NULL, NULL, &ndim, &sh, NULL, NULL);
        if (ndim >= 1) shape[0] = (uint64_t)sh[0];
        if (ndim == 2) shape[1] = (uint64_t)sh[1];
    }
    int ok = d1 ? ndim == 2 && shape[0] == d0 && shape[1] == d1 : ndim == 1 && shape[0] == d0;
    if (!ok) {
        if (d1) return tl__fail(TL_ERR_SHAPE, "weights: \"%s\" should be [%zu, %zu]", shown, d0, d1);
        return tl__fail(TL_ERR_SHAPE, "weights: \"%s\" should be [%zu]", shown, d0);
    }
    return TL_OK;
}

static tl_status tl__lm_read_f32(const tl__lm_src *src, size_t i, float *out, size_t n) {
    return src->gg ? tl__gguf_read_f32(src->gg, i, out, n) : tl_safetensors_read_f32(src->st, i, out, n);
}

static tl_status tl__lm_read(const tl__lm_src *src, const char *name, size_t d0, size_t d1, float **out) {
    size_t i, n = d1 ? d0 * d1 : d0;
    tl_status s = tl__lm_find(src, name, d0, d1, &i);
    if (s) return s;
    float *p = tl__malloc(n * sizeof(float));
    if (!p) return TL_ERR_NO_MEMORY;
    if ((s = tl__lm_read_f32(src, i, p, n))) {
        tl__free(p);
        return s;
    }
    size_t bad = tl__first_non_finite(p, n);
    if (bad != n) {
        tl__free(p);
        return tl__fail(TL_ERR_NON_FINITE, "weights: \"%s\" holds a NaN or infinity at element %zu", name, bad);
    }
    *out = p;
    return TL_OK;
}

/* A Hugging Face packed projection (transformers' BitLinear / AutoBitLinear buffers): "<name>"
 * U8 [rows / 4, cols] and "<module>.weight_scale" (one value, any float dtype). Unpacked row
 * r = k x P + p (P = rows / 4) is bits 2k of packed row p; the trit is the code - 1 (code 3 is no
 * trit). The output is divided by weight_scale (bitlinear) or multiplied by it (autobitlinear),
 * so alpha = 1 / weight_scale or weight_scale. */
static tl_status tl__lm_hf_names(const tl__lm_src *src, const char *name, size_t rows, size_t cols, size_t *wi,
                                 size_t *si) {
    char sn[128];
    size_t nl = strlen(name), ndim, nbytes;
    tl_dtype dt;
    const int64_t *sh;
    tl_status s;
    if (rows % 4) return tl__fail(TL_ERR_SHAPE, "weights: \"%s\": %zu rows are not packed 4 per byte", name, rows);
    if ((s = tl__lm_find(src, name, rows / 4, cols, wi))) return s;
    tl_safetensors_tensor(src->st, *wi, NULL, NULL, &dt, NULL, NULL, NULL, NULL);
    if (dt != TL_DTYPE_U8) return tl__fail(TL_ERR_DTYPE, "weights: \"%s\" must be U8 (packed trits: quantization_config says offline)", name);
    snprintf(sn, sizeof sn, "%.*s_scale", (int)nl, name); /* "....weight" -> "....weight_scale" */
    if (tl_safetensors_find(src->st, sn, strlen(sn), si)) return tl__fail(TL_ERR_PARSE, "weights: no tensor \"%s\"", sn);
    tl_safetensors_tensor(src->st, *si, NULL, NULL, &dt, &ndim, &sh, NULL, &nbytes);
    size_t count = 1;
    for (size_t d = 0; d < ndim; d++) count *= (size_t)sh[d];
    if (count != 1) return tl__fail(TL_ERR_SHAPE, "weights: \"%s\" should hold one value", sn);
    return TL_OK;
}

static tl_status tl__lm_hf_proj(const tl__lm_src *src, const char *name, size_t rows, size_t cols, tl_format f,
                                int8_t *t, const uint8_t **later, tl_matrix **out) {
    size_t wi, si, P = rows / 4;
    float ws;
    const uint8_t *p;
    tl_status s;
    if ((s = tl__lm_hf_names(src, name, rows, cols, &wi, &si)) || (s = tl_safetensors_read_f32(src->st, si, &ws, 1))) return s;
    if (!(ws > 0.0f) || !isfinite(ws))
        return tl__fail(TL_ERR_ALPHA, "weights: \"%s_scale\" is %g (not finite and > 0)", name, (double)ws);
    float alpha = src->hf == TL__HF_AUTOBITLINEAR ? ws : 1.0f / ws;
    if (!(alpha > 0.0f) || !isfinite(alpha)) return tl__fail(TL_ERR_ALPHA, "weights: \"%s\": 1 / weight_scale is not finite", name);
    tl_safetensors_tensor(src->st, wi, NULL, NULL, NULL, NULL, NULL, &p, NULL);
    for (size_t i0 = 0; i0 < P * cols; i0 += 4096) { /* a byte with a code 3: b & b >> 1 & 0x55 */
        const size_t i1 = P * cols - i0 > 4096 ? i0 + 4096 : P * cols;
        unsigned any = 0;
        for (size_t i = i0; i < i1; i++) any |= p[i] & (p[i] >> 1);
        for (size_t i = i0; i < i1 && (any & 0x55u); i++)
            if (p[i] & (p[i] >> 1) & 0x55u) {
                unsigned k = 0;
                while (((p[i] >> (2 * k)) & 3u) != 3u) k++;
                return tl__fail(TL_ERR_FORMAT, "weights: \"%s\" row %zu column %zu: code 3 is no trit", name,
                                k * P + i / cols, i % cols);
            }
    }
    if (later && f == TL_FORMAT_I2 && cols % TL__I2_BLOCK_WEIGHTS == 0) {
        /* i2 rows take the same bytes: rewritten where they lie at the load's end */
        float *sc = tl__malloc(rows * sizeof(float));
        if (!sc) return TL_ERR_NO_MEMORY;
        for (size_t r = 0; r < rows; r++) sc[r] = alpha;
        if ((s = tl__matrix_borrow_later(f, rows, cols, sc, out))) {
            tl__free(sc);
            return s;
        }
        *later = p;
        return TL_OK;
    }
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *b = p + (r % P) * cols;
        unsigned sh = 2u * (unsigned)(r / P);
        for (size_t c = 0; c < cols; c++) t[r * cols + c] = (int8_t)((int)((b[c] >> sh) & 3u) - 1);
    }
    return tl_matrix_from_trits(f, t, rows, cols, &alpha, 1, out);
}

/* A projection: in a packed file (pf != 0, format pf), "<name>.tilelli_packed" (U8 [rows,
 * row_bytes]) and "<name>.tilelli_scales" (F32 [rows]), validated as tl_matrix_from_packed does;
 * a Hugging Face packed one (tl__lm_hf_proj); a ternary GGUF tensor (trits and row scales, as
 * ggml dequantizes it); else a float tensor quantized per tensor into format f. w: scratch of
 * rows x cols floats (float sources) or rows x cols bytes and rows floats (the others). later (a
 * Hugging Face one in tl_lm_load_owned, else NULL): where its bytes are noted when its i2 rows are
 * to be written over them (tl__lm_hf_in_place) rather than copied. */
#define TL__PACKED ".tilelli_packed"
#define TL__SCALES ".tilelli_scales"
static tl_status tl__lm_proj(const tl__lm_src *src, const char *name, size_t rows, size_t cols, tl_format f, float *w,
                             const uint8_t **later, tl_matrix **out) {
    size_t i;
    tl_status s;
    tl_format pf = src->pf;
    if (pf) {
        char pn[128], sn[128];
        size_t rb, si, nbytes;
        tl_dtype dt;
        const uint8_t *data;
        snprintf(pn, sizeof pn, "%s" TL__PACKED, name), snprintf(sn, sizeof sn, "%s" TL__SCALES, name);
        if ((s = tl_format_row_bytes(pf, cols, &rb)) || (s = tl__lm_find(src, pn, rows, rb, &i)) ||
            (s = tl__lm_find(src, sn, rows, 0, &si)))
            return s;
        tl_safetensors_tensor(src->st, i, NULL, NULL, &dt, NULL, NULL, &data, &nbytes);
        if (dt != TL_DTYPE_U8) return tl__fail(TL_ERR_DTYPE, "weights: \"%s\" must be U8", pn);
        if ((s = tl_safetensors_read_f32(src->st, si, w, rows))) return s;
        for (size_t r = 0; r < rows; r++)
            if (!(w[r] > 0.0f) || !isfinite(w[r])) return tl__fail(TL_ERR_ALPHA, "weights: \"%s\": a scale is not finite or not > 0", name);
        if (src->borrow && (uintptr_t)data % 16 == 0) { /* the codes where they lie, the scales copied */
            float *sc = tl__malloc(rows * sizeof(float));
            if (!sc) return TL_ERR_NO_MEMORY;
            memcpy(sc, w, rows * sizeof(float));
            if ((s = tl__matrix_borrow(pf, data, nbytes, rows, cols, sc, out))) {
                tl__free(sc);
                return s == TL_ERR_FORMAT ? tl__fail(s, "weights: \"%s\": packed bytes not valid", name) : s;
            }
            return TL_OK;
        }
        if ((s = tl_matrix_from_packed(pf, data, nbytes, rows, cols, w, rows, out)))
            return s == TL_ERR_FORMAT ? tl__fail(s, "weights: \"%s\": packed bytes not valid", name) : s;
        return TL_OK;
    }
    if (src->hf) return tl__lm_hf_proj(src, name, rows, cols, f, (int8_t *)(void *)w, later, out);
    if ((s = tl__lm_find(src, name, rows, cols, &i))) return s;
    if (src->gg) {
        uint32_t type;
        tl__gguf_tensor(src->gg, i, &type, NULL, NULL);
        if (type == TL__GGML_TQ1_0 || type == TL__GGML_TQ2_0 || type == TL__GGML_I2_S) {
            float *scales = w; /* rows floats, then the trits */
            int8_t *t = (int8_t *)(void *)(w + rows);
            if ((s = tl__gguf_read_ternary(src->gg, i, rows, cols, t, scales))) return s;
            /* llama.cpp's optional per-tensor "blk.N.<proj>.scale" multiplies the product's output */
            char gn[96], sn[96];
            size_t si, nd;
            const uint64_t *ne;
            float sc;
            tl__lm_gguf_name(name, gn, sizeof gn);
            snprintf(sn, sizeof sn, "%.*s.scale", (int)(strlen(gn) - 7), gn);
            if (!tl__gguf_find(src->gg, sn, &si)) {
                tl__gguf_tensor(src->gg, si, NULL, &nd, &ne);
                if (nd != 1 || ne[0] != 1) return tl__fail(TL_ERR_SHAPE, "weights: \"%s\" should be [1]", sn);
                if ((s = tl__gguf_read_f32(src->gg, si, &sc, 1))) return s;
                if (!(sc > 0.0f) || !isfinite(sc)) return tl__fail(TL_ERR_ALPHA, "weights: \"%s\" is %g (not finite and > 0)", sn, (double)sc);
                for (size_t r = 0; r < rows; r++) {
                    scales[r] *= sc;
                    if (!(scales[r] > 0.0f) || !isfinite(scales[r]))
                        return tl__fail(TL_ERR_ALPHA, "weights: \"%s\" x \"%s\" row %zu is not finite and > 0", gn, sn, r);
                }
            }
            return tl_matrix_from_trits(f, t, rows, cols, scales, rows, out);
        }
    }
    if ((s = tl__lm_read_f32(src, i, w, rows * cols))) return s;
    size_t bad = tl__first_non_finite(w, rows * cols);
    if (bad != rows * cols)
        return tl__fail(TL_ERR_NON_FINITE, "weights: \"%s\" holds a NaN or infinity at element %zu", name, bad);
    return tl_matrix_quantize(f, w, rows, cols, 0, out);
}

static void tl__lm_free_layers(tl_lm *lm) {
    if (!lm->layers) return;
    for (size_t i = 0; i < lm->nlayers; i++) {
        tl__lm_layer *L = &lm->layers[i];
        tl_matrix_free(L->q), tl_matrix_free(L->k), tl_matrix_free(L->v), tl_matrix_free(L->o);
        tl_matrix_free(L->gate), tl_matrix_free(L->up), tl_matrix_free(L->down);
        tl__free(L->in_norm), tl__free(L->attn_norm), tl__free(L->post_norm), tl__free(L->ffn_norm);
    }
    tl__free(lm->layers);
}

void tl_lm_free(tl_lm *lm) {
    if (!lm) return;
    tl__lm_free_layers(lm);
    if (!lm->embed.borrowed) tl__free(lm->embed.w);
    if (!lm->head_own.borrowed) tl__free(lm->head_own.w);
    tl__free(lm->embed.scales), tl__free(lm->head_own.scales);
    tl__free(lm->final_norm), tl__free(lm->kc), tl__free(lm->vc), tl__free(lm->row);
    tl__free(lm->cos_t), tl__free(lm->sin_t);
    tl__free(lm->h), tl__free(lm->x), tl__free(lm->q), tl__free(lm->k), tl__free(lm->v), tl__free(lm->att);
    tl__free(lm->g), tl__free(lm->u), tl__free(lm->scores), tl__free(lm->xq), tl__free(lm->xs);
    tl__ws_free(&lm->ws);
    tl__free(lm->later);
    tl__free(lm->file); /* after the matrices and tables that lie in it */
    tl__free(lm);
}

static const tl__lm_table *tl__lm_head(const tl_lm *lm) { return lm->tied ? &lm->embed : &lm->head_own; }

/* Row r of a table as float32 values. */
static void tl__lm_table_row(const tl_lm *lm, const tl__lm_table *t, size_t r, float *out) {
    size_t D = lm->hidden;
    if (lm->emb == TL__EMB_F32) {
        memcpy(out, (const float *)t->w + r * D, D * sizeof(float));
    } else if (lm->emb == TL__EMB_F16) {
        const uint16_t *h = (const uint16_t *)t->w + r * D;
        for (size_t c = 0; c < D; c++) out[c] = tl__f16_to_float(h[c]);
    } else {
        const int8_t *q = (const int8_t *)t->w + r * D;
        float d = t->scales[r];
        for (size_t c = 0; c < D; c++) out[c] = (float)q[c] * d;
    }
}

/* A packed file's int8 table's scales ("<name minus .weight>.tilelli_scales", vocab values), read
 * into scales and checked finite and > 0. */
static tl_status tl__lm_i8_scales(const tl_lm *lm, const tl__lm_src *src, const char *name, float *scales) {
    char sn[128];
    size_t si;
    tl_status s;
    snprintf(sn, sizeof sn, "%.*s" TL__SCALES, (int)(strlen(name) - 7), name);
    if ((s = tl__lm_find(src, sn, lm->vocab, 0, &si)) || (s = tl_safetensors_read_f32(src->st, si, scales, lm->vocab))) return s;
    for (size_t r = 0; r < lm->vocab; r++)
        if (!(scales[r] > 0.0f) || !isfinite(scales[r]))
            return tl__fail(TL_ERR_ALPHA, "weights: \"%s\" row %zu: the scale is not finite and > 0", sn, r);
    return TL_OK;
}

/* Whether this machine's values are little-endian, as the files' are. */
static int tl__little_endian(void) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return 0;
#else
    return 1;
#endif
}

/* Whether a packed file's table (raw / dt: its dtype, p: its bytes) is already in the model's form
 * (F32, F16 or I8) and aligned for it: then it can be used where it lies. */
static int tl__lm_table_in_form(const tl_lm *lm, const uint8_t *p, int raw, tl_dtype dt) {
    if (!tl__little_endian()) return 0; /* the file's values are little-endian */
    return lm->emb == TL__EMB_F32 ? raw == 0 && (uintptr_t)p % 4 == 0
           : lm->emb == TL__EMB_F16 ? raw == 1 && (uintptr_t)p % 2 == 0
                                    : dt == TL_DTYPE_I8;
}

/* t->w pointing into the file at p, checked as a copy would be: finite float32 values, float16 ones
 * that are no infinity or NaN, int8 scales (copied) finite and > 0. */
static tl_status tl__lm_table_borrow(tl_lm *lm, const tl__lm_src *src, const char *name, tl__lm_table *t,
                                     const uint8_t *p) {
    const size_t n = lm->vocab * lm->hidden;
    t->w = (void *)(uintptr_t)p, t->borrowed = 1;
    if (lm->emb == TL__EMB_I8) {
        t->scales = tl__malloc(lm->vocab * sizeof(float));
        return t->scales ? tl__lm_i8_scales(lm, src, name, t->scales) : TL_ERR_NO_MEMORY;
    }
    if (lm->emb == TL__EMB_F32) {
        size_t bad = tl__first_non_finite((const float *)t->w, n);
        if (bad != n) return tl__fail(TL_ERR_NON_FINITE, "weights: \"%s\" holds a NaN or infinity at element %zu", name, bad);
        return TL_OK;
    }
    const uint16_t *h = (const uint16_t *)t->w;
    for (size_t i = 0; i < n; i++)
        if ((h[i] & 0x7C00u) == 0x7C00u) return tl__fail(TL_ERR_NON_FINITE, "weights: \"%s\" holds a NaN or infinity at element %zu", name, i);
    return TL_OK;
}

/* The table `name` (vocab x hidden) in the model's form (lm->emb), converted row by row from the
 * file's F32 / F16 / BF16 bytes (no float32 copy of a table held in another form); a packed file
 * (tl_lm_save) of an int8 table holds it as I8 with "<name minus .weight>.tilelli_scales". */
static tl_status tl__lm_read_table(tl_lm *lm, const tl__lm_src *src, const char *name, tl__lm_table *t) {
    size_t V = lm->vocab, D = lm->hidden, i;
    tl_status s = tl__lm_find(src, name, V, D, &i);
    if (s) return s;
    /* the raw rows: F32, F16 or BF16 (little-endian), else a float32 copy of the whole tensor */
    int raw = -1; /* 0 F32, 1 F16, 2 BF16 */
    const uint8_t *p = NULL;
    tl_dtype dt = (tl_dtype)0;
    if (src->gg) {
        uint32_t type;
        size_t nb;
        tl__gguf_tensor(src->gg, i, &type, NULL, NULL);
        p = tl__gguf_tensor_data(src->gg, i, &nb);
        raw = type == TL__GGML_F32 ? 0 : type == TL__GGML_F16 ? 1 : type == TL__GGML_BF16 ? 2 : -1;
    } else {
        tl_safetensors_tensor(src->st, i, NULL, NULL, &dt, NULL, NULL, &p, NULL);
        raw = dt == TL_DTYPE_F32 ? 0 : dt == TL_DTYPE_F16 ? 1 : dt == TL_DTYPE_BF16 ? 2 : -1;
    }
    if (src->borrow && (src->pf || src->hf) && tl__lm_table_in_form(lm, p, raw, dt))
        return tl__lm_table_borrow(lm, src, name, t, p);
    if (lm->emb == TL__EMB_F32) return tl__lm_read(src, name, V, D, (float **)&t->w);
    /* a Hugging Face checkpoint's BF16 table as float16: checked now, rewritten where it lies (the
     * same bytes) at the load's end (tl__lm_hf_in_place) */
    const int convert = src->borrow && src->hf && lm->emb == TL__EMB_F16 && raw == 2 && (uintptr_t)p % 2 == 0 &&
                        tl__little_endian();
    size_t elt = lm->emb == TL__EMB_F16 ? 2 : 1;
    if (convert)
        t->w = (void *)(uintptr_t)p, t->borrowed = 1, t->convert = 1;
    else
        t->w = tl__malloc(V * D * elt);
    if (lm->emb == TL__EMB_I8) t->scales = tl__malloc(V * sizeof(float));
    if (!t->w || (lm->emb == TL__EMB_I8 && !t->scales)) return TL_ERR_NO_MEMORY;
    if (src->pf && lm->emb == TL__EMB_I8 && dt == TL_DTYPE_I8) { /* our packed file: q and d as they are */
        if ((s = tl__lm_i8_scales(lm, src, name, t->scales))) return s;
        memcpy(t->w, p, V * D);
        return TL_OK;
    }
    float *all = NULL, *row = tl__malloc(D * sizeof(float));
    if (!row) return TL_ERR_NO_MEMORY;
    if (raw < 0 && (s = tl__lm_read(src, name, V, D, &all))) {
        tl__free(row);
        return s;
    }
    for (size_t r = 0; r < V && !s; r++) {
        const uint8_t *b = p + r * D * (raw == 0 ? 4 : 2);
        for (size_t c = 0; c < D; c++)
            row[c] = raw < 0   ? all[r * D + c]
                     : raw == 0 ? tl__u2f((uint32_t)b[4 * c] | (uint32_t)b[4 * c + 1] << 8 | (uint32_t)b[4 * c + 2] << 16 |
                                          (uint32_t)b[4 * c + 3] << 24)
                     : raw == 1 ? tl__u2f(tl__f16_bits((uint32_t)b[2 * c] | (uint32_t)b[2 * c + 1] << 8))
                                : tl__u2f(((uint32_t)b[2 * c] | (uint32_t)b[2 * c + 1] << 8) << 16);
        size_t bad = tl__first_non_finite(row, D);
        if (bad != D) {
            s = tl__fail(TL_ERR_NON_FINITE, "weights: \"%s\" holds a NaN or infinity at element %zu", name, r * D + bad);
            break;
        }
        if (lm->emb == TL__EMB_F16) {
            uint16_t *h = convert ? NULL : (uint16_t *)t->w + r * D;
            for (size_t c = 0; c < D; c++) {
                uint16_t v = tl__f16_from_float(row[c]);
                if (h) h[c] = v;
                if ((v & 0x7C00u) == 0x7C00u)
                    s = tl__fail(TL_ERR_OVERFLOW, "weights: \"%s\" element %zu (%g) does not fit float16", name, r * D + c,
                                 (double)row[c]);
            }
        } else {
            float mx = 0.0f;
            for (size_t c = 0; c < D; c++) mx = fabsf(row[c]) > mx ? fabsf(row[c]) : mx;
            float d = mx > 0.0f ? mx / 127.0f : 1.0f;
            int8_t *q = (int8_t *)t->w + r * D;
            for (size_t c = 0; c < D; c++) {
                float v = rintf(row[c] / d);
                q[c] = (int8_t)(v > 127.0f ? 127 : v < -127.0f ? -127 : v);
            }
            t->scales[r] = d;
        }
    }
    tl__free(row), tl__free(all);
    return s;
}

/* Every tensor present with its shape, before anything big is allocated. */
static tl_status tl__lm_check_tensors(const tl_lm *lm, const tl__lm_src *src) {
    char name[96];
    size_t D = lm->hidden, i, i2;
    tl_status s;
    if ((s = tl__lm_find(src, "model.embed_tokens.weight", lm->vocab, D, &i)) ||
        (s = tl__lm_find(src, "model.norm.weight", D, 0, &i)) ||
        (!lm->tied && (s = tl__lm_find(src, "lm_head.weight", lm->vocab, D, &i))))
        return s;
    size_t dims[5];
    tl__lm_dims(lm, dims);
    for (size_t l = 0; l < lm->nlayers; l++)
        for (size_t j = 0; j < TL__LM_NTENSORS; j++) {
            snprintf(name, sizeof name, "model.layers.%zu.%s", l, tl__lm_tensors[j].name);
            size_t d0 = dims[tl__lm_tensors[j].d0], d1 = dims[tl__lm_tensors[j].d1], rb;
            if (src->pf && tl__lm_tensors[j].proj) { /* packed: the codes and the scales */
                char pn[128], sn[128];
                snprintf(pn, sizeof pn, "%s" TL__PACKED, name), snprintf(sn, sizeof sn, "%s" TL__SCALES, name);
                if ((s = tl_format_row_bytes(src->pf, d1, &rb)) || (s = tl__lm_find(src, pn, d0, rb, &i)) ||
                    (s = tl__lm_find(src, sn, d0, 0, &i)))
                    return s;
            } else if (src->hf && tl__lm_tensors[j].proj) {
                if ((s = tl__lm_hf_names(src, name, d0, d1, &i, &i2))) return s;
            } else if ((s = tl__lm_find(src, name, d0, d1, &i)))
                return s;
        }
    return TL_OK;
}

static tl_status tl__lm_weights(tl_lm *lm, const tl__lm_src *src, tl_format f) {
    size_t D = lm->hidden, F = lm->inter, Q = lm->heads * lm->head_dim;
    tl_status s;
    if ((s = tl__lm_read_table(lm, src, "model.embed_tokens.weight", &lm->embed)) ||
        (s = tl__lm_read(src, "model.norm.weight", D, 0, &lm->final_norm)) ||
        (!lm->tied && (s = tl__lm_read_table(lm, src, "lm_head.weight", &lm->head_own))))
        return s;
    lm->layers = tl__calloc(lm->nlayers, sizeof *lm->layers);
    /* scratch: a float projection (rows x cols floats); else its trits and one scale per row */
    size_t wide = F > Q ? (F > D ? F : D) : (Q > D ? Q : D), most = F * D > Q * D ? F * D : Q * D;
    size_t big = src->pf ? wide : (src->hf || src->gg) ? wide + (most + 3) / 4 : most;
    if (src->gg) big = big > most ? big : most; /* a GGUF file may hold float projections */
    float *w = tl__malloc(big * sizeof(float));
    if (src->hf && src->borrow) lm->later = tl__calloc(lm->nlayers * TL__LM_NTENSORS, sizeof *lm->later);
    if (!lm->layers || !w || (src->hf && src->borrow && !lm->later)) {
        tl__free(w);
        return TL_ERR_NO_MEMORY;
    }
    char name[96];
    size_t dims[5];
    tl__lm_dims(lm, dims);
    for (size_t l = 0; l < lm->nlayers && !s; l++)
        for (size_t j = 0; j < TL__LM_NTENSORS && !s; j++) {
            char *at = (char *)&lm->layers[l] + tl__lm_tensors[j].at;
            size_t d0 = dims[tl__lm_tensors[j].d0], d1 = dims[tl__lm_tensors[j].d1];
            snprintf(name, sizeof name, "model.layers.%zu.%s", l, tl__lm_tensors[j].name);
            const uint8_t **later = lm->later ? &lm->later[l * TL__LM_NTENSORS + j] : NULL;
            s = tl__lm_tensors[j].proj ? tl__lm_proj(src, name, d0, d1, f, w, later, (tl_matrix **)(void *)at)
                                       : tl__lm_read(src, name, d0, 0, (float **)(void *)at);
            /* what a model holds is fixed at the load: no column-major copy for sparse vectors
             * (the down projection's input after a squared ReLU would take it) */
            if (!s && tl__lm_tensors[j].proj) (*(tl_matrix **)(void *)at)->col_off = 1;
        }
    tl__free(w);
    return s;
}

/* KV cache, RoPE tables and the chunk's scratch. */
static tl_status tl__lm_buffers(tl_lm *lm) {
    size_t C = lm->context, D = lm->hidden, F = lm->inter, Q = lm->heads * lm->head_dim,
           KV = lm->kv_heads * lm->head_dim, half = lm->head_dim / 2, n = TL__LM_CHUNK;
    uint64_t cache = (uint64_t)lm->nlayers * C * KV;
    if (cache > TL_MAX_ELEMENTS) return tl__fail(TL_ERR_OVERFLOW, "context %zu: the KV cache would hold over 2^30 values", C);
    size_t wide = D > F ? D : F;
    wide = wide > Q ? wide : Q;
    lm->kc = tl__malloc((size_t)cache * sizeof(float));
    lm->vc = tl__malloc((size_t)cache * sizeof(float));
    lm->cos_t = tl__malloc(C * half * sizeof(float));
    lm->sin_t = tl__malloc(C * half * sizeof(float));
    lm->h = tl__malloc(n * D * sizeof(float));
    lm->x = tl__malloc(n * wide * sizeof(float));
    lm->q = tl__malloc(n * Q * sizeof(float));
    lm->k = tl__malloc(n * KV * sizeof(float));
    lm->v = tl__malloc(n * KV * sizeof(float));
    lm->att = tl__malloc(n * Q * sizeof(float));
    lm->g = tl__malloc(n * F * sizeof(float));
    lm->u = tl__malloc(n * F * sizeof(float));
    lm->scores = tl__malloc(C * sizeof(float));
    lm->row = tl__malloc(D * sizeof(float));
    lm->xq = tl__malloc(n * wide);
    lm->xs = tl__malloc(n * sizeof(float));
    if (!lm->kc || !lm->vc || !lm->cos_t || !lm->sin_t || !lm->h || !lm->x || !lm->q || !lm->k || !lm->v ||
        !lm->att || !lm->g || !lm->u || !lm->scores || !lm->xq || !lm->xs || !lm->row)
        return TL_ERR_NO_MEMORY;
    /* RoPE: freq_j = theta^(-2j / head_dim) and the angle p * freq_j in double, cos/sin rounded once */
    for (size_t j = 0; j < half; j++) {
        double freq = pow((double)lm->theta, -2.0 * (double)j / (double)lm->head_dim);
        for (size_t p = 0; p < C; p++) {
            lm->cos_t[p * half + j] = (float)cos((double)p * freq);
            lm->sin_t[p * half + j] = (float)sin((double)p * freq);
        }
    }
    return TL_OK;
}

/* The value of metadata key `key` of st, or NULL. */
static const char *tl__lm_meta(const tl_safetensors *st, const char *key, size_t *len) {
    for (size_t j = 0, n = tl_safetensors_metadata_count(st); j < n; j++) {
        const char *k, *v;
        size_t kl, vl;
        tl_safetensors_metadata(st, j, &k, &kl, &v, &vl);
        if (kl == strlen(key) && !memcmp(k, key, kl)) {
            *len = vl;
            return v;
        }
    }
    return NULL;
}

/* A model from its config (JSON text) and the tensors of src. */
static tl_status tl__lm_load_src(const char *config, size_t config_len, tl__lm_src *src, tl_format f, size_t context,
                                 tl_lm **out) {
    if (!config) return tl__fail(TL_ERR_PARSE, "no config: give config.json (the file has none in its metadata)");
    tl__json *cfg = NULL;
    tl_status s = tl__json_parse(config, config_len, &cfg);
    if (s) return s == TL_ERR_PARSE ? tl__fail(s, "config: not valid JSON") : s;
    tl_lm *lm = tl__calloc(1, sizeof *lm);
    if (!lm) {
        tl__json_free(cfg);
        return TL_ERR_NO_MEMORY;
    }
    s = tl__lm_config(lm, cfg);
    tl__json_free(cfg);
    if (!s && src->gg && lm->hf) s = tl__fail(TL_ERR_PARSE, "config: quantization_config belongs to safetensors files");
    if (!s && !src->pf && !src->gg) src->hf = lm->hf;
    if (!s) {
        lm->context = context ? context : (lm->max_pos < 2048 ? lm->max_pos : 2048);
        if (lm->context > TL_MAX_ELEMENTS) s = tl__fail(TL_ERR_OVERFLOW, "context %zu is too large", context);
    }
    if (!s) s = tl__lm_check_tensors(lm, src);
    if (!s) s = tl__lm_weights(lm, src, f);
    if (!s) s = tl__lm_buffers(lm);
    if (s) {
        tl_lm_free(lm);
        return s;
    }
    *out = lm;
    return TL_OK;
}

static tl_status tl__lm_load_st(const char *config, size_t config_len, const tl_safetensors *st, tl_format f,
                                size_t context, int borrow, tl_lm **out) {
    if (!tl_format_name(f)) return tl__fail(TL_ERR_FORMAT, "format %d is no packed format", (int)f);
    /* a packed file (tl_lm_save) names its weights' format and may carry its config */
    tl__lm_src src = {st, NULL, (tl_format)0, 0, borrow};
    size_t wl = 0, ml = 0;
    const char *magic = tl__lm_meta(st, "format", &ml), *wf = tl__lm_meta(st, "tilelli.weights", &wl);
    if (magic && ml == 10 && !memcmp(magic, "tilelli-lm", 10)) {
        if (!wf || tl_format_from_name(wf, wl, &src.pf)) return tl__fail(TL_ERR_PARSE, "metadata: \"tilelli.weights\" names no format");
        if (!config) config = tl__lm_meta(st, "config", &config_len);
    }
    return tl__lm_load_src(config, config_len, &src, f, context, out);
}

tl_status tl_lm_load(const char *config, size_t config_len, const tl_safetensors *st, tl_format f, size_t context,
                     tl_lm **out) {
    if (!st || !out || (!config && config_len)) return TL_ERR_NULL;
    return tl__lm_load_st(config, config_len, st, f, context, 0, out);
}

/* Every projection of lm, in tl__lm_tensors' order: *at(lm, l, j) for layer l, entry j. */
static tl_matrix **tl__lm_proj_at(tl_lm *lm, size_t l, size_t j) {
    return (tl_matrix **)(void *)((char *)&lm->layers[l] + tl__lm_tensors[j].at);
}

/* A table's bytes as the model holds them. */
static size_t tl__lm_table_bytes(const tl_lm *lm) {
    return lm->vocab * lm->hidden * (lm->emb == TL__EMB_F32 ? 4 : lm->emb == TL__EMB_F16 ? 2 : 1);
}

/* A borrowed table's own copy (the file is about to be freed). */
static tl_status tl__lm_table_own(const tl_lm *lm, tl__lm_table *t) {
    if (!t->borrowed) return TL_OK;
    size_t n = tl__lm_table_bytes(lm);
    void *w = tl__malloc(n);
    if (!w) return TL_ERR_NO_MEMORY;
    memcpy(w, t->w, n);
    t->w = w, t->borrowed = 0;
    return TL_OK;
}

/* Hugging Face packing (U8 [rows / 4, cols]: row k x rows / 4 + p in bits 2k of packed row p,
 * code = trit + 1) as i2 rows (cols % 64 == 0: cols / 4 bytes a row, the same count). */
static void tl__lm_hf_to_i2(const uint8_t *in, size_t rows, size_t cols, uint8_t *out) {
    size_t P = rows / 4;
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *b = in + (r % P) * cols;
        unsigned k = (unsigned)(r / P);
        for (size_t c0 = 0; c0 < cols; c0 += TL__I2_BLOCK_WEIGHTS, out += 16) tl__i2_block_from_crumbs(b + c0, k, out);
    }
}

typedef struct {
    const uint8_t *src; /* the Hugging Face bytes */
    tl_matrix *m;
} tl__lm_hf_job;

static int tl__lm_hf_job_cmp(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const tl__lm_hf_job *)a)->src, y = (uintptr_t)((const tl__lm_hf_job *)b)->src;
    return x < y ? -1 : x > y;
}

/* tl_lm_load_owned of a Hugging Face checkpoint, once everything is read and checked: each
 * projection noted in lm->later gets its i2 rows where its U8 bytes lie, and each BF16 table
 * becomes float16 where it lies. Safetensors writers do not align tensors, so a projection's rows
 * start at the 16-byte boundary at or below its bytes, in the file's order. The up to 15 bytes
 * below are a tensor already copied out, or bytes the previous projection left (its rows, a whole
 * number of 16-byte blocks, moved down to a boundary, end at or below this one's), unless a table
 * the model keeps lies there: then the rows get a buffer of their own. All that can fail (those
 * buffers, the scratch) comes before the first byte is written; on failure the file is as it was. */
static tl_status tl__lm_hf_in_place(tl_lm *lm) {
    size_t n = 0, most = 0, total = lm->nlayers * TL__LM_NTENSORS;
    tl__lm_hf_job *jobs = tl__malloc((total ? total : 1) * sizeof *jobs);
    if (!jobs) return TL_ERR_NO_MEMORY;
    for (size_t l = 0; l < lm->nlayers; l++)
        for (size_t j = 0; j < TL__LM_NTENSORS; j++)
            if (lm->later[l * TL__LM_NTENSORS + j])
                jobs[n++] = (tl__lm_hf_job){lm->later[l * TL__LM_NTENSORS + j], *tl__lm_proj_at(lm, l, j)};
    qsort(jobs, n, sizeof *jobs, tl__lm_hf_job_cmp);
    tl__lm_table *tables[2] = {&lm->embed, lm->tied ? NULL : &lm->head_own};
    const size_t tb = tl__lm_table_bytes(lm);
    tl_status s = TL_OK;
    for (size_t i = 0; i < n && !s; i++) {
        tl_matrix *m = jobs[i].m;
        const size_t bytes = m->rows * m->row_bytes;
        uint8_t *dst = (uint8_t *)(uintptr_t)(jobs[i].src - (uintptr_t)jobs[i].src % 16);
        int clash = 0;
        for (int k = 0; k < 2; k++)
            if (tables[k] && tables[k]->borrowed) {
                const uint8_t *t0 = (const uint8_t *)tables[k]->w;
                clash |= dst < t0 + tb && t0 < jobs[i].src;
            }
        if (clash && !(dst = tl__malloc(bytes))) s = TL_ERR_NO_MEMORY;
        if (s) break;
        m->data = dst, m->borrowed = !clash;
        most = bytes > most ? bytes : most;
    }
    uint8_t *scratch = s ? NULL : tl__malloc(most ? most : 1);
    if (!s && !scratch) s = TL_ERR_NO_MEMORY;
    if (s) {
        tl__free(jobs);
        return s;
    }
    for (int k = 0; k < 2; k++)
        if (tables[k] && tables[k]->convert) {
            uint16_t *h = (uint16_t *)tables[k]->w;
            for (size_t e = 0; e < lm->vocab * lm->hidden; e++) h[e] = tl__f16_from_float(tl__u2f((uint32_t)h[e] << 16));
            tables[k]->convert = 0;
        }
    for (size_t i = 0; i < n; i++) {
        tl_matrix *m = jobs[i].m;
        memcpy(scratch, jobs[i].src, m->rows * m->row_bytes);
        tl__lm_hf_to_i2(scratch, m->rows, m->cols, m->data);
    }
    tl__free(scratch), tl__free(jobs), tl__free(lm->later);
    lm->later = NULL;
    return TL_OK;
}

/* tl_lm_load_owned keeps the file when what the model does not use of it is at most this or a
 * quarter of it (model.c's rule for its files) */
#define TL__LM_OWNED_SLACK ((size_t)1 << 20)

tl_status tl_lm_load_owned(const char *config, size_t config_len, uint8_t *bytes, size_t len, tl_format f,
                           size_t context, tl_lm **out) {
    if (!bytes || !out || (!config && config_len)) return TL_ERR_NULL;
    *out = NULL;
    tl_safetensors *st = NULL;
    tl_status s = tl_safetensors_open(bytes, len, &st);
    if (s) return s;
    tl_lm *lm = NULL;
    s = tl__lm_load_st(config, config_len, st, f, context, (uintptr_t)bytes % 16 == 0, &lm);
    tl_safetensors_free(st);
    if (s) return s;
    /* The projections left in the file layout (borrowed, or a Hugging Face one's rows) into their
     * tiles (matrix.c), in place, now that nothing can refuse the load; what lies in the file is
     * counted. */
    size_t used = 0, most = 16;
    for (size_t l = 0; l < lm->nlayers; l++)
        for (size_t j = 0; j < TL__LM_NTENSORS; j++)
            if (tl__lm_tensors[j].proj) {
                size_t need = tl__matrix_tile_scratch(*tl__lm_proj_at(lm, l, j));
                most = need > most ? need : most;
            }
    uint8_t *scratch = tl__malloc(most);
    if (!scratch || (lm->later && (s = tl__lm_hf_in_place(lm)))) {
        tl__free(scratch);
        tl_lm_free(lm);
        return scratch ? s : TL_ERR_NO_MEMORY;
    }
    for (size_t l = 0; l < lm->nlayers; l++)
        for (size_t j = 0; j < TL__LM_NTENSORS; j++)
            if (tl__lm_tensors[j].proj) {
                tl_matrix *m = *tl__lm_proj_at(lm, l, j);
                tl__matrix_tile_plain(m, scratch);
                used += m->borrowed ? m->rows * m->row_bytes : 0;
            }
    tl__free(scratch);
    used += (lm->embed.borrowed + lm->head_own.borrowed) * tl__lm_table_bytes(lm);
    if (used && (len - used <= len / 4 || len - used <= TL__LM_OWNED_SLACK)) {
        lm->file = bytes;
        *out = lm;
        return TL_OK;
    }
    /* Little of the file is the model's (a file with other data): copies, and the file goes. */
    for (size_t l = 0; l < lm->nlayers && !s; l++)
        for (size_t j = 0; j < TL__LM_NTENSORS && !s; j++)
            if (tl__lm_tensors[j].proj) s = tl__matrix_own(*tl__lm_proj_at(lm, l, j));
    if (!s) s = tl__lm_table_own(lm, &lm->embed);
    if (!s) s = tl__lm_table_own(lm, &lm->head_own);
    if (s) {
        tl_lm_free(lm); /* the file is not its yet: it stays the caller's */
        return s;
    }
    tl__free(bytes);
    *out = lm;
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * GGUF (the container: src/gguf.c): llama.cpp's BitNet architectures. The metadata keys under
 * "<arch>." name the config's numbers; "bitnet-25" (bitnet.cpp's 2B4T) is squared ReLU, "bitnet"
 * and "bitnet-b1.58" are SiLU; no "output.weight" means a tied head. Rotary embeddings are the
 * rotate_half ones (ggml's NEOX mode, as these architectures use, so q and k rows are in
 * Hugging Face order).
 * ------------------------------------------------------------------------- */

static const struct {
    const char *arch;
    int act;
} tl__lm_archs[] = {{"bitnet-25", TL_LM_ACT_RELU2}, {"bitnet", TL_LM_ACT_SILU}, {"bitnet-b1.58", TL_LM_ACT_SILU}};

/* The config keys and their GGUF keys (after "<arch>."): integers, then floats. */
static const struct {
    const char *config, *gguf;
    int required, is_float;
} tl__lm_gguf_keys[] = {
    {"hidden_size", "embedding_length", 1, 0},
    {"intermediate_size", "feed_forward_length", 1, 0},
    {"num_hidden_layers", "block_count", 1, 0},
    {"num_attention_heads", "attention.head_count", 1, 0},
    {"num_key_value_heads", "attention.head_count_kv", 0, 0},
    {"head_dim", "attention.key_length", 0, 0},
    {"max_position_embeddings", "context_length", 0, 0},
    {"rms_norm_eps", "attention.layer_norm_rms_epsilon", 0, 1},
    {"rope_theta", "rope.freq_base", 0, 1},
};
#define TL__LM_NGKEYS (sizeof tl__lm_gguf_keys / sizeof *tl__lm_gguf_keys)

/* The config.json that g's metadata describes, into b. */
static tl_status tl__lm_gguf_config(const tl__gguf *g, tl__buf *b) {
    const char *arch;
    size_t al;
    if (!tl__gguf_get_str(g, "general.architecture", &arch, &al))
        return tl__fail(TL_ERR_PARSE, "metadata: no \"general.architecture\" string");
    size_t a = 0, na = sizeof tl__lm_archs / sizeof *tl__lm_archs;
    while (a < na && !(strlen(tl__lm_archs[a].arch) == al && !memcmp(tl__lm_archs[a].arch, arch, al))) a++;
    if (a == na || al > 32)
        return tl__fail(TL_ERR_PARSE, "metadata: architecture \"%.*s\" (bitnet-25, bitnet and bitnet-b1.58 are read)",
                        (int)(al > 32 ? 32 : al), arch);
    char key[96];
    int64_t v;
    double d;
    size_t ti;
    tl__buf_printf(b, "{\"model_type\":\"bitnet\",\"hidden_act\":\"%s\"", tl__lm_archs[a].act == TL_LM_ACT_RELU2 ? "relu2" : "silu");
    for (size_t k = 0; k < TL__LM_NGKEYS; k++) {
        snprintf(key, sizeof key, "%.*s.%s", (int)al, arch, tl__lm_gguf_keys[k].gguf);
        if (tl__lm_gguf_keys[k].is_float ? tl__gguf_get_float(g, key, &d) : tl__gguf_get_int(g, key, &v)) {
            tl__buf_printf(b, ",\"%s\":", tl__lm_gguf_keys[k].config);
            if (tl__lm_gguf_keys[k].is_float) {
                if (!isfinite(d)) return tl__fail(TL_ERR_PARSE, "metadata \"%s\" is not finite", key);
                tl__buf_json_number(b, d);
            } else
                tl__buf_printf(b, "%lld", (long long)v);
        } else if (tl__lm_gguf_keys[k].required)
            return tl__fail(TL_ERR_PARSE, "metadata: no integer \"%s\"", key);
    }
    /* the vocabulary: its key, else the embedding's rows */
    snprintf(key, sizeof key, "%.*s.vocab_size", (int)al, arch);
    if (!tl__gguf_get_int(g, key, &v)) {
        const uint64_t *ne;
        size_t nd;
        if (tl__gguf_find(g, "token_embd.weight", &ti)) return tl__fail(TL_ERR_PARSE, "weights: no tensor \"token_embd.weight\"");
        tl__gguf_tensor(g, ti, NULL, &nd, &ne);
        v = nd == 2 && ne[1] <= INT64_MAX ? (int64_t)ne[1] : 0;
    }
    tl__buf_printf(b, ",\"vocab_size\":%lld", (long long)v);
    /* partial rotary embeddings are not this architecture */
    int64_t rd, heads = 0, hd = 0, dim = 0;
    snprintf(key, sizeof key, "%.*s.rope.dimension_count", (int)al, arch);
    if (tl__gguf_get_int(g, key, &rd)) {
        snprintf(key, sizeof key, "%.*s.attention.key_length", (int)al, arch);
        if (!tl__gguf_get_int(g, key, &hd)) {
            snprintf(key, sizeof key, "%.*s.embedding_length", (int)al, arch), tl__gguf_get_int(g, key, &dim);
            snprintf(key, sizeof key, "%.*s.attention.head_count", (int)al, arch), tl__gguf_get_int(g, key, &heads);
            hd = heads > 0 ? dim / heads : 0;
        }
        if (rd != hd) return tl__fail(TL_ERR_PARSE, "metadata: rope.dimension_count %lld is not the head size %lld", (long long)rd, (long long)hd);
    }
    tl__buf_printf(b, ",\"tie_word_embeddings\":%s", tl__gguf_find(g, "output.weight", &ti) ? "true" : "false");
    if (tl__gguf_get_int(g, "tokenizer.ggml.bos_token_id", &v)) tl__buf_printf(b, ",\"bos_token_id\":%lld", (long long)v);
    if (tl__gguf_get_int(g, "tokenizer.ggml.eos_token_id", &v)) tl__buf_printf(b, ",\"eos_token_id\":%lld", (long long)v);
    const char *act;
    if (tl__gguf_get_str(g, "tilelli.activations", &act, &al)) {
        tl__buf_printf(b, ",\"tilelli_activations\":");
        tl__buf_json_string(b, act, al);
    }
    /* the tables: as the file says, else float16 when the embedding is F16 (no loss, half the memory) */
    uint32_t et;
    if (tl__gguf_get_str(g, "tilelli.embedding", &act, &al)) {
        tl__buf_printf(b, ",\"tilelli_embedding\":");
        tl__buf_json_string(b, act, al);
    } else if (!tl__gguf_find(g, "token_embd.weight", &ti) && (tl__gguf_tensor(g, ti, &et, NULL, NULL), et == TL__GGML_F16)) {
        tl__buf_printf(b, ",\"tilelli_embedding\":\"float16\"");
    }
    tl__buf_printf(b, "}");
    return tl__buf_status(b);
}

int tl_lm_is_gguf(const uint8_t *bytes, size_t len) { return tl__gguf_is_file(bytes, len); }

tl_status tl_lm_load_gguf(const uint8_t *bytes, size_t len, tl_format f, size_t context, tl_lm **out) {
    if (!bytes || !out) return TL_ERR_NULL;
    if (!tl_format_name(f)) return tl__fail(TL_ERR_FORMAT, "format %d is no packed format", (int)f);
    tl__gguf *g = NULL;
    tl_status s = tl__gguf_open(bytes, len, &g);
    if (s) return s;
    tl__buf cfg = {0};
    s = tl__lm_gguf_config(g, &cfg);
    if (!s) {
        tl__lm_src src = {NULL, g, (tl_format)0, 0, 0};
        s = tl__lm_load_src((const char *)cfg.p, cfg.len, &src, f, context, out);
    }
    tl__buf_free(&cfg);
    tl__gguf_free(g);
    return s;
}

/* Placeholder vocabulary entries (flag TL_LM_GGUF_VOCAB): llama.cpp's loaders need one. */
static const char *tl__lm_vocab_token(size_t i, char *buf, size_t cap) {
    if (i == 0) return "<unk>";
    if (i == 1) return "<s>";
    if (i == 2) return "</s>";
    if (i < 3 + 256) return snprintf(buf, cap, "<0x%02X>", (unsigned)(i - 3)), buf;
    return snprintf(buf, cap, "t%zu", i), buf;
}
static double tl__lm_vocab_score(size_t i) { return -(double)i; }
static double tl__lm_vocab_type(size_t i) { return i == 0 ? 2 : i < 3 ? 3 : i < 3 + 256 ? 6 : 1; }

/* A table as a GGUF tensor: float32 as F32, float16 as F16 (the same bits), int8 as F32 values q x d. */
static tl__gguf_tensor_out tl__lm_gguf_table(const tl_lm *lm, const char *name, const tl__lm_table *tb) {
    tl__gguf_tensor_out o = {.name = name, .type = TL__GGML_F32, .ndim = 2, .rows = lm->vocab, .cols = lm->hidden};
    if (lm->emb == TL__EMB_F32) o.f = tb->w;
    if (lm->emb == TL__EMB_F16) o.type = TL__GGML_F16, o.h = tb->w;
    if (lm->emb == TL__EMB_I8) o.q = tb->w, o.qs = tb->scales;
    return o;
}

tl_status tl_lm_save_gguf(const tl_lm *lm, uint32_t type, uint32_t flags, uint8_t **bytes, size_t *len) {
    if (!lm || !bytes || !len) return TL_ERR_NULL;
    if (type != TL__GGML_TQ1_0 && type != TL__GGML_TQ2_0 && type != TL__GGML_I2_S)
        return tl__fail(TL_ERR_ARGUMENT, "GGUF type %u: the projections are written as TQ1_0 (34), TQ2_0 (35) or I2_S (36)", (unsigned)type);
    const char *arch = lm->act == TL_LM_ACT_RELU2 ? "bitnet-25" : "bitnet";
    size_t D = lm->hidden, nt = 2 + !lm->tied + TL__LM_NTENSORS * lm->nlayers;
    tl__gguf_tensor_out *t = tl__calloc(nt, sizeof *t);
    char *names = tl__malloc(nt * 48), keys[TL__LM_NGKEYS + 2][64];
    if (!t || !names) {
        tl__free(t), tl__free(names);
        return TL_ERR_NO_MEMORY;
    }
    size_t n = 0;
    t[n++] = tl__lm_gguf_table(lm, "token_embd.weight", &lm->embed);
    t[n++] = (tl__gguf_tensor_out){.name = "output_norm.weight", .type = TL__GGML_F32, .ndim = 1, .rows = 1, .cols = D,
                                   .f = lm->final_norm};
    if (!lm->tied) t[n++] = tl__lm_gguf_table(lm, "output.weight", &lm->head_own);
    char *at = names;
    for (size_t l = 0; l < lm->nlayers; l++)
        for (size_t j = 0; j < TL__LM_NTENSORS; j++, at += 48) {
            const char *field = (const char *)&lm->layers[l] + tl__lm_tensors[j].at;
            snprintf(at, 48, "blk.%zu.%s.weight", l, tl__lm_tensors[j].gguf);
            if (tl__lm_tensors[j].proj) {
                const tl_matrix *m = *(tl_matrix *const *)(const void *)field;
                t[n++] = (tl__gguf_tensor_out){.name = at, .type = type, .ndim = 2, .rows = m->rows, .cols = m->cols, .m = m};
            } else {
                size_t dims[5];
                tl__lm_dims(lm, dims);
                t[n++] = (tl__gguf_tensor_out){.name = at, .type = TL__GGML_F32, .ndim = 1, .rows = 1,
                                               .cols = dims[tl__lm_tensors[j].d0], .f = *(float *const *)(const void *)field};
            }
        }
    tl__gguf_kv kv[TL__LM_NGKEYS + 16];
    size_t nk = 0;
    kv[nk++] = (tl__gguf_kv){.key = "general.architecture", .type = TL__GGUF_STRING, .s = arch};
    kv[nk++] = (tl__gguf_kv){.key = "general.name", .type = TL__GGUF_STRING, .s = "tilelli"};
    const size_t ints[] = {D, lm->inter, lm->nlayers, lm->heads, lm->kv_heads, lm->head_dim, lm->max_pos};
    for (size_t k = 0; k < TL__LM_NGKEYS; k++) {
        snprintf(keys[k], sizeof keys[k], "%s.%s", arch, tl__lm_gguf_keys[k].gguf);
        kv[nk++] = tl__lm_gguf_keys[k].is_float
                       ? (tl__gguf_kv){.key = keys[k], .type = TL__GGUF_F32, .f = k == TL__LM_NGKEYS - 1 ? lm->theta : lm->eps}
                       : (tl__gguf_kv){.key = keys[k], .type = TL__GGUF_U32, .u = ints[k]};
    }
    snprintf(keys[TL__LM_NGKEYS], 64, "%s.vocab_size", arch);
    kv[nk++] = (tl__gguf_kv){.key = keys[TL__LM_NGKEYS], .type = TL__GGUF_U32, .u = lm->vocab};
    snprintf(keys[TL__LM_NGKEYS + 1], 64, "%s.rope.dimension_count", arch);
    kv[nk++] = (tl__gguf_kv){.key = keys[TL__LM_NGKEYS + 1], .type = TL__GGUF_U32, .u = lm->head_dim};
    if (lm->bos >= 0) kv[nk++] = (tl__gguf_kv){.key = "tokenizer.ggml.bos_token_id", .type = TL__GGUF_U32, .u = (uint64_t)lm->bos};
    if (lm->eos >= 0) kv[nk++] = (tl__gguf_kv){.key = "tokenizer.ggml.eos_token_id", .type = TL__GGUF_U32, .u = (uint64_t)lm->eos};
    kv[nk++] = (tl__gguf_kv){.key = "tilelli.activations", .type = TL__GGUF_STRING,
                             .s = lm->prec == TL_PRECISION_INT8 ? "int8" : "float"};
    kv[nk++] = (tl__gguf_kv){.key = "tilelli.embedding", .type = TL__GGUF_STRING, .s = tl__emb_names[lm->emb]};
    if (flags & TL_LM_GGUF_VOCAB) {
        kv[nk++] = (tl__gguf_kv){.key = "tokenizer.ggml.model", .type = TL__GGUF_STRING, .s = "llama"};
        kv[nk++] = (tl__gguf_kv){.key = "tokenizer.ggml.tokens", .type = TL__GGUF_ARRAY, .item = TL__GGUF_STRING,
                                 .n = lm->vocab, .at = tl__lm_vocab_token};
        kv[nk++] = (tl__gguf_kv){.key = "tokenizer.ggml.scores", .type = TL__GGUF_ARRAY, .item = TL__GGUF_F32,
                                 .n = lm->vocab, .fi = tl__lm_vocab_score};
        kv[nk++] = (tl__gguf_kv){.key = "tokenizer.ggml.token_type", .type = TL__GGUF_ARRAY, .item = TL__GGUF_I32,
                                 .n = lm->vocab, .fi = tl__lm_vocab_type};
    }
    tl_status s = tl__gguf_write(kv, nk, t, n, bytes, len);
    tl__free(t), tl__free(names);
    return s;
}

/* The configuration (Hugging Face keys) as JSON; with_state adds the runtime's fields. */
static void tl__lm_config_json(const tl_lm *lm, tl__buf *b, int with_state) {
    const struct {
        const char *key;
        size_t v;
    } sizes[] = {{"vocab_size", lm->vocab},
                 {"hidden_size", lm->hidden},
                 {"intermediate_size", lm->inter},
                 {"num_hidden_layers", lm->nlayers},
                 {"num_attention_heads", lm->heads},
                 {"num_key_value_heads", lm->kv_heads},
                 {"head_dim", lm->head_dim},
                 {"max_position_embeddings", lm->max_pos}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        tl__buf_printf(b, "%s\"%s\":%zu", i ? "," : "{", sizes[i].key, sizes[i].v);
    tl__buf_printf(b, ",\"hidden_act\":\"%s\"", lm->act == TL_LM_ACT_RELU2 ? "relu2" : "silu");
    tl__buf_printf(b, ",\"tie_word_embeddings\":%s", lm->tied ? "true" : "false");
    tl__buf_printf(b, ",\"rms_norm_eps\":");
    tl__buf_json_number(b, lm->eps);
    tl__buf_printf(b, ",\"rope_theta\":");
    tl__buf_json_number(b, lm->theta);
    if (lm->bos >= 0) tl__buf_printf(b, ",\"bos_token_id\":%lld", (long long)lm->bos);
    if (lm->eos >= 0) tl__buf_printf(b, ",\"eos_token_id\":%lld", (long long)lm->eos);
    tl__buf_printf(b, ",\"tilelli_activations\":\"%s\"", lm->prec == TL_PRECISION_INT8 ? "int8" : "float");
    if (lm->emb != TL__EMB_F32) tl__buf_printf(b, ",\"tilelli_embedding\":\"%s\"", tl__emb_names[lm->emb]);
    if (with_state) {
        tl__buf_printf(b, ",\"context\":%zu,\"position\":%zu", lm->context, lm->pos);
        tl__buf_printf(b, ",\"format\":\"%s\"", tl_format_name(lm->layers[0].q->format));
    }
    tl__buf_printf(b, "}");
}

tl_status tl_lm_save(const tl_lm *lm, uint8_t **bytes, size_t *len) {
    if (!lm || !bytes || !len) return TL_ERR_NULL;
    size_t D = lm->hidden, nt = 5; /* embedding, norm, head, and int8 tables' scales */
    for (size_t j = 0; j < TL__LM_NTENSORS; j++) nt += (tl__lm_tensors[j].proj ? 2 : 1) * lm->nlayers;
    tl__st_entry *e = tl__calloc(nt, sizeof *e);
    char *names = tl__malloc(nt * 80);
    tl__buf cfg = {0};
    tl__lm_config_json(lm, &cfg, 0);
    tl__buf_put(&cfg, "", 1); /* NUL */
    tl_status s = tl__buf_status(&cfg);
    if (!s && (!e || !names)) s = TL_ERR_NO_MEMORY;
    if (s) {
        tl__free(e), tl__free(names), tl__buf_free(&cfg);
        return s;
    }
    size_t n = 0;
#define TL__F32(nm, p, d0, d1)                                                                               \
    (e[n] = (tl__st_entry){nm, TL_DTYPE_F32, (d1) ? 2 : 1, {(d0), (d1)}, (p), (d0) * ((d1) ? (d1) : 1) * 4, NULL}, n++)
    /* The packed projections first, from a 16-byte aligned start: each is whole 16-byte rows, so
     * every one lies 16-byte aligned, where tl_lm_load_owned uses it in place; then the float32
     * tensors (4-byte multiples), then the tables in their form (F32, F16: the same bits, or I8
     * with "<name>.tilelli_scales"), each aligned for its type. */
    const char *tnames[2][2] = {{"model.embed_tokens.weight", "model.embed_tokens" TL__SCALES},
                                {"lm_head.weight", "lm_head" TL__SCALES}};
    char *at = names;
    size_t dims[5];
    tl__lm_dims(lm, dims);
    for (size_t l = 0; l < lm->nlayers; l++)
        for (size_t j = 0; j < TL__LM_NTENSORS; j++) {
            if (!tl__lm_tensors[j].proj) continue;
            const tl_matrix *m = *tl__lm_proj_at((tl_lm *)lm, l, j);
            snprintf(at, 80, "model.layers.%zu.%s" TL__PACKED, l, tl__lm_tensors[j].name);
            e[n++] = (tl__st_entry){at, TL_DTYPE_U8, 2, {m->rows, m->row_bytes}, NULL, m->rows * m->row_bytes, m};
            at += 80;
        }
    TL__F32("model.norm.weight", lm->final_norm, D, 0);
    for (size_t l = 0; l < lm->nlayers; l++)
        for (size_t j = 0; j < TL__LM_NTENSORS; j++) {
            const char *field = (const char *)&lm->layers[l] + tl__lm_tensors[j].at;
            if (!tl__lm_tensors[j].proj) {
                snprintf(at, 80, "model.layers.%zu.%s", l, tl__lm_tensors[j].name);
                TL__F32(at, *(float *const *)(const void *)field, dims[tl__lm_tensors[j].d0], 0);
            } else {
                const tl_matrix *m = *(tl_matrix *const *)(const void *)field;
                snprintf(at, 80, "model.layers.%zu.%s" TL__SCALES, l, tl__lm_tensors[j].name);
                TL__F32(at, m->scales, m->rows, 0);
            }
            at += 80;
        }
    for (int k = 0; k < 2 - lm->tied; k++)
        if (lm->emb == TL__EMB_I8) TL__F32(tnames[k][1], (k ? &lm->head_own : &lm->embed)->scales, lm->vocab, 0);
    for (int k = 0; k < 2 - lm->tied; k++) {
        const tl__lm_table *tb = k ? &lm->head_own : &lm->embed;
        size_t V = lm->vocab;
        if (lm->emb == TL__EMB_F32) TL__F32(tnames[k][0], tb->w, V, D);
        if (lm->emb == TL__EMB_F16) e[n++] = (tl__st_entry){tnames[k][0], TL_DTYPE_F16, 2, {V, D}, tb->w, V * D * 2, NULL};
        if (lm->emb == TL__EMB_I8) e[n++] = (tl__st_entry){tnames[k][0], TL_DTYPE_I8, 2, {V, D}, tb->w, V * D, NULL};
    }
#undef TL__F32
    const char *meta[] = {"format", "tilelli-lm", "tilelli.weights", tl_format_name(lm->layers[0].q->format),
                          "config", (const char *)cfg.p};
    s = tl__safetensors_write(e, n, meta, 3, bytes, len);
    tl__free(e), tl__free(names), tl__buf_free(&cfg);
    return s;
}

/* ---------------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------------- */

void tl_lm_reset(tl_lm *lm) {
    if (lm) lm->pos = 0;
}

size_t tl_lm_position(const tl_lm *lm) { return lm ? lm->pos : 0; }
size_t tl_lm_vocab_size(const tl_lm *lm) { return lm ? lm->vocab : 0; }
size_t tl_lm_context(const tl_lm *lm) { return lm ? lm->context : 0; }

tl_status tl_lm_set_precision(tl_lm *lm, tl_precision p) {
    if (!lm) return TL_ERR_NULL;
    if (p != TL_PRECISION_FLOAT && p != TL_PRECISION_INT8)
        return tl__fail(TL_ERR_ARGUMENT, "precision must be FLOAT or INT8");
    lm->prec = p;
    return TL_OK;
}

/* n vectors of x (each m->cols long) through a projection into out; int8: xq/xs already hold the
 * quantized x when quantized is set. */
static tl_status tl__lm_linear(tl_lm *lm, const tl_matrix *m, const float *x, size_t n, int quantized, float *out) {
    if (lm->prec == TL_PRECISION_FLOAT) return tl__matmul_f32_ws(m, x, n, out, &lm->ws);
    if (!quantized) tl__quantize_i8(x, m->cols, n, lm->xq, lm->xs);
    return tl__matmul_i8_ws(m, lm->xq, n, lm->xs, NULL, out, &lm->ws);
}

/* q, k (n tokens from position p) rotated in place, head by head (rotate_half pairs j, j + d/2). */
static void tl__lm_rope(const tl_lm *lm, float *v, size_t n, size_t nheads, size_t p) {
    size_t d = lm->head_dim, half = d / 2;
    for (size_t t = 0; t < n; t++) {
        const float *c = lm->cos_t + (p + t) * half, *sn = lm->sin_t + (p + t) * half;
        for (size_t h = 0; h < nheads; h++) {
            float *a = v + (t * nheads + h) * d;
            for (size_t j = 0; j < half; j++) {
                float x0 = a[j], x1 = a[j + half];
                a[j] = x0 * c[j] - x1 * sn[j];
                a[j + half] = x1 * c[j] + x0 * sn[j];
            }
        }
    }
}

/* Attention of n tokens (positions p..p + n - 1, their k and v already in the cache). */
static void tl__lm_attention(tl_lm *lm, size_t layer, size_t n, size_t p) {
    size_t d = lm->head_dim, KV = lm->kv_heads * d, group = lm->heads / lm->kv_heads;
    const float *kc = lm->kc + layer * lm->context * KV, *vc = lm->vc + layer * lm->context * KV;
    float scale = 1.0f / sqrtf((float)d);
    for (size_t t = 0; t < n; t++) {
        size_t len = p + t + 1;
        for (size_t h = 0; h < lm->heads; h++) {
            const float *q = lm->q + (t * lm->heads + h) * d;
            size_t kvh = h / group;
            tl__attn_scores(q, kc + kvh * d, KV, len, d, scale, lm->scores);
            tl__softmax(lm->scores, len);
            tl__weighted_rows(lm->scores, vc + kvh * d, KV, len, d, lm->att + (t * lm->heads + h) * d);
        }
    }
}

static tl_status tl__lm_norm_rows(float *x, size_t n, size_t width, float eps, const float *w, const char *what,
                                  size_t layer) {
    for (size_t t = 0; t < n; t++)
        if (tl__rms_norm(x + t * width, width, eps, w))
            return tl__fail(TL_ERR_NON_FINITE, "layer %zu, %s: an output is not finite", layer, what);
    return TL_OK;
}

/* One chunk of n <= TL__LM_CHUNK tokens through every layer; h holds their hidden states after. */
static tl_status tl__lm_chunk(tl_lm *lm, const uint32_t *tokens, size_t n) {
    size_t D = lm->hidden, F = lm->inter, Q = lm->heads * lm->head_dim, KV = lm->kv_heads * lm->head_dim, p = lm->pos;
    for (size_t t = 0; t < n; t++) tl__lm_table_row(lm, &lm->embed, tokens[t], lm->h + t * D);
    tl_status s;
    for (size_t l = 0; l < lm->nlayers; l++) {
        const tl__lm_layer *L = &lm->layers[l];
        memcpy(lm->x, lm->h, n * D * sizeof(float));
        if ((s = tl__lm_norm_rows(lm->x, n, D, lm->eps, L->in_norm, "input_layernorm", l)) ||
            (s = tl__lm_linear(lm, L->q, lm->x, n, 0, lm->q)) || (s = tl__lm_linear(lm, L->k, lm->x, n, 1, lm->k)) ||
            (s = tl__lm_linear(lm, L->v, lm->x, n, 1, lm->v)))
            return s;
        tl__lm_rope(lm, lm->q, n, lm->heads, p);
        tl__lm_rope(lm, lm->k, n, lm->kv_heads, p);
        memcpy(lm->kc + (l * lm->context + p) * KV, lm->k, n * KV * sizeof(float));
        memcpy(lm->vc + (l * lm->context + p) * KV, lm->v, n * KV * sizeof(float));
        tl__lm_attention(lm, l, n, p);
        if ((s = tl__lm_norm_rows(lm->att, n, Q, lm->eps, L->attn_norm, "attn_sub_norm", l)) ||
            (s = tl__lm_linear(lm, L->o, lm->att, n, 0, lm->x)))
            return s;
        for (size_t i = 0; i < n * D; i++) lm->h[i] += lm->x[i];
        memcpy(lm->x, lm->h, n * D * sizeof(float));
        if ((s = tl__lm_norm_rows(lm->x, n, D, lm->eps, L->post_norm, "post_attention_layernorm", l)) ||
            (s = tl__lm_linear(lm, L->gate, lm->x, n, 0, lm->g)) || (s = tl__lm_linear(lm, L->up, lm->x, n, 1, lm->u)))
            return s;
        for (size_t i = 0; i < n * F; i++) {
            float g = lm->g[i];
            g = lm->act == TL_LM_ACT_RELU2 ? (g > 0.0f ? g * g : 0.0f) : tl__silu(g);
            lm->g[i] = g * lm->u[i];
        }
        if ((s = tl__lm_norm_rows(lm->g, n, F, lm->eps, L->ffn_norm, "ffn_sub_norm", l)) ||
            (s = tl__lm_linear(lm, L->down, lm->g, n, 0, lm->x)))
            return s;
        for (size_t i = 0; i < n * D; i++) lm->h[i] += lm->x[i];
    }
    return TL_OK;
}

/* logits of hidden state h (D values; normalized in place) */
static tl_status tl__lm_logits(tl_lm *lm, float *h, float *logits) {
    if (tl__rms_norm(h, lm->hidden, lm->eps, lm->final_norm))
        return tl__fail(TL_ERR_NON_FINITE, "final norm: an output is not finite");
    const tl__lm_table *head = tl__lm_head(lm);
    if (lm->emb == TL__EMB_F32) {
        tl__gemv_f32((const float *)head->w, lm->vocab, lm->hidden, h, logits);
    } else if (lm->emb == TL__EMB_F16) {
        tl__gemv_f16((const uint16_t *)head->w, lm->vocab, lm->hidden, h, logits);
    } else {
        tl__gemv_i8((const int8_t *)head->w, head->scales, lm->vocab, lm->hidden, h, logits);
    }
    size_t bad = tl__first_non_finite(logits, lm->vocab);
    if (bad != lm->vocab) return tl__fail(TL_ERR_NON_FINITE, "logits[%zu] is not finite", bad);
    return TL_OK;
}

tl_status tl_lm_forward(tl_lm *lm, const uint32_t *tokens, size_t n, int all, float *logits, size_t logits_len) {
    if (!lm || !tokens || !logits) return TL_ERR_NULL;
    if (n == 0) return TL_ERR_EMPTY;
    if (n > lm->context - lm->pos)
        return tl__fail(TL_ERR_SIZE, "%zu tokens at position %zu do not fit the context of %zu", n, lm->pos,
                        lm->context);
    if (logits_len != (all ? n : 1) * lm->vocab)
        return tl__fail(TL_ERR_SIZE, "logits: %zu values for %zu x %zu", logits_len, all ? n : 1, lm->vocab);
    for (size_t t = 0; t < n; t++)
        if (tokens[t] >= lm->vocab)
            return tl__fail(TL_ERR_ARGUMENT, "tokens[%zu] = %u is not below the vocabulary size %zu", t,
                            (unsigned)tokens[t], lm->vocab);
    size_t start = lm->pos;
    for (size_t t0 = 0; t0 < n; t0 += TL__LM_CHUNK) {
        size_t c = n - t0 < TL__LM_CHUNK ? n - t0 : TL__LM_CHUNK;
        tl_status s = tl__lm_chunk(lm, tokens + t0, c);
        for (size_t t = 0; !s && t < c; t++)
            if (all || t0 + t == n - 1)
                s = tl__lm_logits(lm, lm->h + t * lm->hidden, logits + (all ? (t0 + t) * lm->vocab : 0));
        if (s) {
            lm->pos = start; /* the cache past `start` is not valid: the tokens did not go through */
            return s;
        }
        lm->pos += c;
    }
    return TL_OK;
}

tl_status tl_lm_describe(const tl_lm *lm, char **json, size_t *len) {
    if (!lm || !json || !len) return TL_ERR_NULL;
    tl__buf b = {0};
    tl__lm_config_json(lm, &b, 1);
    tl_status s = tl__buf_status(&b);
    if (s) {
        tl__buf_free(&b);
        return s;
    }
    *json = (char *)b.p, *len = b.len;
    return TL_OK;
}

/* ---------------------------------------------------------------------------
 * Sampling
 * ------------------------------------------------------------------------- */

static uint32_t tl__xorshift32(uint32_t *s) {
    uint32_t x = *s ? *s : 0x9E3779B9u;
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    return *s = x;
}

typedef struct {
    float p;
    uint32_t i;
} tl__cand;

static int tl__cand_desc(const void *a, const void *b) {
    const tl__cand *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->i < y->i ? -1 : x->i > y->i;
}

tl_status tl_lm_sample(const float *logits, size_t n, float temperature, size_t top_k, float top_p, uint32_t *state,
                       uint32_t *token) {
    if (!logits || !state || !token) return TL_ERR_NULL;
    if (n == 0) return TL_ERR_EMPTY;
    if (!(temperature >= 0.0f) || !isfinite(temperature))
        return tl__fail(TL_ERR_ARGUMENT, "temperature must be finite and >= 0, got %g", (double)temperature);
    if (!(top_p > 0.0f && top_p <= 1.0f)) return tl__fail(TL_ERR_ARGUMENT, "top_p must be in (0, 1], got %g", (double)top_p);
    size_t bad = tl__first_non_finite(logits, n);
    if (bad != n) return tl__fail(TL_ERR_NON_FINITE, "logits[%zu] is not finite", bad);
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    if (temperature == 0.0f || top_k == 1) { /* greedy: the first of the largest */
        *token = (uint32_t)best;
        return TL_OK;
    }
    tl__cand *c = tl__malloc(n * sizeof *c);
    if (!c) return TL_ERR_NO_MEMORY;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        c[i].p = (float)exp(((double)logits[i] - logits[best]) / temperature);
        c[i].i = (uint32_t)i;
    }
    tl__heapsort(c, n, sizeof *c, tl__cand_desc);
    size_t keep = top_k && top_k < n ? top_k : n;
    for (size_t i = 0; i < keep; i++) sum += c[i].p;
    if (top_p < 1.0f) { /* the smallest prefix whose mass reaches top_p */
        double acc = 0;
        for (size_t i = 0; i < keep; i++)
            if ((acc += c[i].p) >= top_p * sum) {
                keep = i + 1, sum = acc;
                break;
            }
    }
    double r = (tl__xorshift32(state) >> 8) * (1.0 / 16777216.0) * sum, acc = 0;
    uint32_t pick = c[keep - 1].i;
    for (size_t i = 0; i < keep; i++)
        if ((acc += c[i].p) > r) {
            pick = c[i].i;
            break;
        }
    tl__free(c);
    *token = pick;
    return TL_OK;
}

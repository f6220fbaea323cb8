/* fuzz_gguf.c — libFuzzer target for the GGUF reader (src/gguf.c) and the language model built
 * from it (src/lm.c, tl_lm_load_gguf).
 *
 * Each input is a whole file. Whatever happens: the status is one the header documents for
 * tl_lm_load_gguf (PARSE, VERSION, DTYPE, SHAPE, FORMAT, NON_FINITE, ALPHA, OVERFLOW, SIZE), and
 * nothing is held afterwards. A file that loads runs two tokens; written again as I2_S (or, when
 * that shape or its scales cannot be I2_S, refused with ARGUMENT / FORMAT) and read back, it gives
 * the same logits bit for bit. Then the load is repeated with one allocation failing (which one
 * depends on the input): NO_MEMORY or the first status, nothing held. Seeds: GGUF files of tiny
 * models written by our writer (make_gguf_corpus.mjs). */
#include <string.h>

#include "fuzz_common.h"

static int documented(tl_status s) {
    return s == TL_OK || s == TL_ERR_PARSE || s == TL_ERR_VERSION || s == TL_ERR_DTYPE || s == TL_ERR_SHAPE ||
           s == TL_ERR_FORMAT || s == TL_ERR_NON_FINITE || s == TL_ERR_ALPHA || s == TL_ERR_OVERFLOW ||
           s == TL_ERR_SIZE || s == TL_ERR_EMPTY;
}

static tl_status logits(tl_lm *lm, float **out) {
    size_t V = tl_lm_vocab_size(lm);
    uint32_t tok[2] = {0, (uint32_t)(V - 1)};
    *out = malloc(2 * V * sizeof **out);
    tl_lm_reset(lm);
    return tl_lm_forward(lm, tok, 2, 1, *out, 2 * V);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    size_t held = tl_mem_live_bytes();
    tl_lm *lm = NULL;
    tl_status s = tl_lm_load_gguf(data, len, TL_FORMAT_I2, 4, &lm);
    REQUIRE(documented(s));
    REQUIRE(!s == !!lm);
    if (!s) {
        float *a = NULL, *b = NULL;
        tl_status r = logits(lm, &a);
        REQUIRE(r == TL_OK || r == TL_ERR_NON_FINITE);
        uint8_t *f = NULL;
        size_t fl = 0;
        tl_status w = tl_lm_save_gguf(lm, TL_GGUF_I2_S, 0, &f, &fl);
        REQUIRE(w == TL_OK || w == TL_ERR_ARGUMENT || w == TL_ERR_FORMAT);
        if (!w) {
            tl_lm *again = NULL;
            REQUIRE(tl_lm_load_gguf(f, fl, TL_FORMAT_I2, 4, &again) == TL_OK);
            if (!r) {
                REQUIRE(logits(again, &b) == TL_OK);
                REQUIRE(!memcmp(a, b, 2 * tl_lm_vocab_size(lm) * sizeof *a));
            }
            tl_lm_free(again);
            tl_free(f);
        }
        free(a), free(b);
        tl_lm_free(lm);
    }
    REQUIRE(tl_mem_live_bytes() == held);
    tl_mem_fail_after(1 + (len ? data[len / 2] % 16 : 0));
    lm = NULL;
    tl_status s2 = tl_lm_load_gguf(data, len, TL_FORMAT_I2, 4, &lm);
    tl_mem_fail_after(0);
    REQUIRE(s2 == s || s2 == TL_ERR_NO_MEMORY);
    tl_lm_free(lm);
    REQUIRE(tl_mem_live_bytes() == held);
    return 0;
}

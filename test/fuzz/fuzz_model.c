/* fuzz_model.c — libFuzzer target for the packed model file reader and runtime (src/model.c).
 *
 * Each input is loaded as a model file. Whatever happens: a status among those tl_model_load
 * documents, and nothing held afterwards when it fails. A model that loads is run on a batch of
 * two fixed input vectors (OK; NO_MEMORY/OVERFLOW for absurd widths; NON_FINITE when huge
 * weights overflow an intermediate value to infinity), then freed: nothing
 * held. The load is repeated with one allocation failing (which one depends on the input):
 * NO_MEMORY or the first status, nothing held. The in-place load (tl_model_load_owned) of a
 * tl_alloc copy must give the same status and, when it loads, the same outputs. The seeds (corpus/model) are files written by
 * js/model.js's packModel, so mutations start from every layer type. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"


static int documented(tl_status s) {
    return s == TL_OK || s == TL_ERR_PARSE || s == TL_ERR_VERSION || s == TL_ERR_FORMAT || s == TL_ERR_NON_FINITE ||
           s == TL_ERR_NO_MEMORY || s == TL_ERR_OVERFLOW || s == TL_ERR_EMPTY;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    size_t held = tl_mem_live_bytes();
    tl_model *m = NULL;
    tl_status s = tl_model_load(data, len, &m);
    REQUIRE(documented(s));
    if (s) {
        REQUIRE(!m && tl_mem_live_bytes() == held);
    } else {
        size_t in = tl_model_input_size(m), out = tl_model_output_size(m);
        REQUIRE(in > 0 && out > 0 && tl_model_layer_count(m) > 0);
        if (in <= (1u << 16) && out <= (1u << 16)) {
            float *x = malloc(2 * in * sizeof *x), *y = malloc(2 * out * sizeof *y);
            for (size_t i = 0; i < 2 * in; i++) x[i] = (float)((int)(i * 37 % 101) - 50) / 25.0f;
            tl_status r = tl_model_run(m, x, 2 * in, 2, y, 2 * out);
            REQUIRE(r == TL_OK || r == TL_ERR_NO_MEMORY || r == TL_ERR_OVERFLOW || r == TL_ERR_NON_FINITE);
            free(x), free(y);
        }
        tl_model_free(m);
        REQUIRE(tl_mem_live_bytes() == held);
    }
    /* in place (tl_model_load_owned, what Model.load uses): the same status; a model that loads
     * runs bit for bit as the copying load's; a refused buffer is left as it was */
    {
        uint8_t *own = tl_alloc(len ? len : 1);
        REQUIRE(own != NULL);
        if (len) memcpy(own, data, len);
        tl_model *mo = NULL;
        tl_status so = tl_model_load_owned(own, len, &mo);
        REQUIRE(so == s || (so == TL_ERR_NO_MEMORY && s == TL_OK));
        if (so) {
            REQUIRE(!mo && (!len || memcmp(own, data, len) == 0));
            tl_free(own);
        } else {
            tl_model *mc = NULL;
            REQUIRE(tl_model_load(data, len, &mc) == TL_OK);
            size_t in = tl_model_input_size(mo), out = tl_model_output_size(mo);
            if (in <= (1u << 12) && out <= (1u << 12)) {
                float *x = malloc(in * sizeof *x), *y1 = malloc(out * sizeof *y1), *y2 = malloc(out * sizeof *y2);
                for (size_t i = 0; i < in; i++) x[i] = (float)((int)(i * 29 % 61) - 30) / 15.0f;
                tl_status r1 = tl_model_run(mc, x, in, 1, y1, out), r2 = tl_model_run(mo, x, in, 1, y2, out);
                REQUIRE(r1 == r2 || r1 == TL_ERR_NO_MEMORY || r2 == TL_ERR_NO_MEMORY);
                if (!r1 && !r2) REQUIRE(memcmp(y1, y2, out * sizeof *y1) == 0);
                free(x), free(y1), free(y2);
            }
            tl_model_free(mc);
            tl_model_free(mo); /* frees own */
        }
        REQUIRE(tl_mem_live_bytes() == held);
    }
    /* the same load with one allocation failing */
    tl_mem_fail_after(1 + (len ? data[len / 2] % 16 : 0));
    tl_model *m2 = NULL;
    tl_status s2 = tl_model_load(data, len, &m2);
    tl_mem_fail_after(0);
    REQUIRE(s2 == s || s2 == TL_ERR_NO_MEMORY);
    tl_model_free(m2);
    REQUIRE(tl_mem_live_bytes() == held);
    return 0;
}

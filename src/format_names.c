/* format_names.c — TEMPORARY until the format-traits table lands (kernels branch): names of the
 * packed formats. */
#include "internal.h"

static const char *const tl__fmt_names[] = {NULL, "i2", "tq1", "bitplane"};

const char *tl_format_name(tl_format f) { return f >= 1 && f <= 3 ? tl__fmt_names[f] : NULL; }

tl_status tl_format_from_name(const char *name, size_t len, tl_format *out) {
    if (!name || !out) return TL_ERR_NULL;
    for (int f = 1; f <= 3; f++)
        if (strlen(tl__fmt_names[f]) == len && !memcmp(tl__fmt_names[f], name, len)) {
            *out = (tl_format)f;
            return TL_OK;
        }
    return TL_ERR_FORMAT;
}

size_t tl_format_count(void) { return 3; }
tl_format tl_format_at(size_t i) { return i < 3 ? (tl_format)(i + 1) : (tl_format)0; }

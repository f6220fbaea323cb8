/* fixtures.c — reader for test/fixtures/quant/ (format: top of test/fixtures/gen_quant.py). */
#include "fixtures.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * PRNG inputs
 * ------------------------------------------------------------------------------------------- */
static uint32_t xs32(uint32_t *x) {
    uint32_t v = *x;
    v ^= v << 13;
    v ^= v >> 17;
    v ^= v << 5;
    *x = v;
    return v;
}

/* Two's-complement reinterpretation without implementation-defined conversion. */
static double as_i32(uint32_t u) { return u < 0x80000000u ? (double)u : (double)u - 4294967296.0; }

int fx_prng_fill(const char *kind, uint32_t seed, float *out, size_t n) {
    uint32_t x = seed;
    if (strcmp(kind, "uniform") == 0) {
        for (size_t k = 0; k < n; k++) out[k] = (float)(as_i32(xs32(&x)) / 2147483648.0);
    } else if (strcmp(kind, "irwin4") == 0) {
        for (size_t k = 0; k < n; k++) {
            double a = as_i32(xs32(&x)), b = as_i32(xs32(&x)), c = as_i32(xs32(&x)), d = as_i32(xs32(&x));
            out[k] = (float)((((a + b) + c) + d) / 4294967296.0); /* integer sums: exact */
        }
    } else if (strcmp(kind, "cauchy") == 0) {
        for (size_t k = 0; k < n; k++) {
            double a = as_i32(xs32(&x)), b = as_i32(xs32(&x));
            out[k] = (float)(a / b);
        }
    } else {
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * manifest
 * ------------------------------------------------------------------------------------------- */
#define MAX_TOK 24

static int split(char *line, char **tok) {
    int nt = 0;
    char *p = line;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\r') *p++ = '\0';
        if (!*p) break;
        if (nt == MAX_TOK) return -1;
        tok[nt++] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r') p++;
    }
    return nt;
}

static int parse_u64(const char *s, uint64_t *v) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') return -1;
    *v = (uint64_t)x;
    return 0;
}

static int parse_off(const char *s, long *v) {
    uint64_t x;
    if (parse_u64(s, &x) || x > 0x7FFFFFFFu) return -1;
    *v = (long)x;
    return 0;
}

static int parse_double(const char *s, double *v) {
    char *end;
    *v = strtod(s, &end);
    return (end == s || *end) ? -1 : 0;
}

static int parse_f32_bits(const char *s, float *v) {
    char *end;
    if (strlen(s) != 8) return -1;
    unsigned long u = strtoul(s, &end, 16);
    if (*end) return -1;
    uint32_t b = (uint32_t)u;
    memcpy(v, &b, sizeof b);
    return 0;
}

static void copy_name(char *dst, const char *src) {
    size_t len = strlen(src);
    if (len >= FX_NAME_MAX) len = FX_NAME_MAX - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void case_init(fx_case *c) {
    memset(c, 0, sizeof *c);
    c->off_input = c->off_trits = c->off_values = -1;
    c->off_row_alphas = c->off_row_trits = c->off_row_values = -1;
}

/* The whole file at path, NUL-terminated (not counted in *len); NULL on failure. */
#ifndef FX_WASI_PATH_OPEN
static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, used = 0;
    unsigned char *buf = malloc(cap + 1);
    while (buf) {
        used += fread(buf + used, 1, cap - used, f);
        if (used < cap) break;
        unsigned char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[used] = 0;
    *len = used;
    return buf;
}
#else
/* The C tests also run as standalone wasm under Node's WASI (test/c/run-wasi.mjs), where
 * Emscripten's libc cannot open paths (its standalone open() fails with EPERM): open the file
 * with WASI's path_open against the preopened directory that holds it, and read it with
 * fd_read. Emscripten 3.1.6's JS library does not know path_open, fd_prestat_get and
 * fd_prestat_dir_name, so such a build must link with -sERROR_ON_UNDEFINED_SYMBOLS=0 (Node's
 * WASI provides them); hence opt-in: -DFX_WASI_PATH_OPEN. */
#include <wasi/api.h>

static int wasi_open(const char *path, __wasi_fd_t *out) {
    for (__wasi_fd_t fd = 3; fd < 64; fd++) {
        __wasi_prestat_t ps;
        __wasi_errno_t e = __wasi_fd_prestat_get(fd, &ps);
        if (e == __WASI_ERRNO_BADF) break;
        if (e || ps.pr_type != __WASI_PREOPENTYPE_DIR || ps.u.dir.pr_name_len >= 1024) continue;
        char name[1024];
        if (__wasi_fd_prestat_dir_name(fd, (uint8_t *)name, ps.u.dir.pr_name_len)) continue;
        size_t nl = ps.u.dir.pr_name_len;
        while (nl && name[nl - 1] == '\0') nl--;
        name[nl] = '\0';
        const char *rel = NULL;
        if (path[0] != '/' && strcmp(name, ".") == 0) {
            rel = path;
        } else if (nl && strncmp(path, name, nl) == 0 &&
                   (name[nl - 1] == '/' || path[nl] == '/' || !path[nl])) {
            rel = path + nl;
            while (*rel == '/') rel++;
            if (!*rel) rel = ".";
        }
        if (!rel) continue;
        if (__wasi_path_open(fd, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, rel, strlen(rel), 0,
                             __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK, 0, 0, out) == 0)
            return 0;
    }
    return -1;
}

static unsigned char *read_file(const char *path, size_t *len) {
    __wasi_fd_t fd;
    if (wasi_open(path, &fd)) return NULL;
    size_t cap = 1 << 16, used = 0;
    unsigned char *buf = malloc(cap + 1);
    while (buf) {
        __wasi_iovec_t iov = {buf + used, cap - used};
        __wasi_size_t got = 0;
        if (__wasi_fd_read(fd, &iov, 1, &got)) {
            free(buf);
            buf = NULL;
            break;
        }
        used += got;
        if (got == 0) break;
        if (used == cap) {
            unsigned char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    (void)__wasi_fd_close(fd);
    if (!buf) return NULL;
    buf[used] = 0;
    *len = used;
    return buf;
}
#endif

static int finish_case(fx_case *c, char *err, size_t errlen) {
    if (!c->ndim) return fail(err, errlen, "case %s: no shape", c->name);
    if (!c->blob[0]) return fail(err, errlen, "case %s: no blob", c->name);
    if (!c->input_kind[0]) return fail(err, errlen, "case %s: no input", c->name);
    if (c->off_trits < 0) return fail(err, errlen, "case %s: no trits", c->name);
    if (c->alpha != c->alpha || c->alpha <= 0) return fail(err, errlen, "case %s: no alpha", c->name);
    if (c->ndim >= 2 && (c->off_row_alphas < 0 || c->off_row_trits < 0))
        return fail(err, errlen, "case %s: per-row results missing", c->name);
    if (c->ndim < 2 && (c->off_row_alphas >= 0 || c->off_row_trits >= 0 || c->off_row_values >= 0))
        return fail(err, errlen, "case %s: per-row results for a 1-D case", c->name);
    return 0;
}

int fx_open(const char *dir, fx_set *set, char *err, size_t errlen) {
    memset(set, 0, sizeof *set);
    if (strlen(dir) + 32 > sizeof set->dir) return fail(err, errlen, "directory name too long");
    strcpy(set->dir, dir);
    char path[1100];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    size_t text_len;
    char *text = (char *)read_file(path, &text_len);
#if defined(__EMSCRIPTEN__) && !defined(FX_WASI_PATH_OPEN)
    if (!text)
        return fail(err, errlen,
                    "cannot read %s: standalone Emscripten wasm cannot open files; build this "
                    "test with -DFX_WASI_PATH_OPEN -sERROR_ON_UNDEFINED_SYMBOLS=0 (see test/c/fixtures.c)",
                    path);
#endif
    if (!text) return fail(err, errlen, "cannot read %s", path);
    if (strlen(text) != text_len) {
        free(text);
        return fail(err, errlen, "%s: NUL byte in the manifest", path);
    }

    size_t cap = 0;
    fx_case *c = NULL;
    int magic = 0, rc = 0;
    size_t lineno = 0, declared = 0;
    char *line = text;
    while (line && *line && rc == 0) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        lineno++;
        char *tok[MAX_TOK];
        int nt = split(line, tok);
        line = nl ? nl + 1 : NULL;
        if (nt < 0) {
            rc = fail(err, errlen, "manifest line %zu: too many tokens", lineno);
            break;
        }
        if (nt == 0 || tok[0][0] == '#') continue;
        const char *k = tok[0];
        if (!magic) {
            if (nt != 2 || strcmp(k, "tilelli-quant-fixtures") || strcmp(tok[1], "1")) {
                rc = fail(err, errlen, "%s: not a version 1 fixture manifest", path);
                break;
            }
            magic = 1;
            continue;
        }
#define BAD() (rc = fail(err, errlen, "manifest line %zu: bad '%s' line", lineno, k))
        if (!c) { /* header, or the start of a case */
            if (strcmp(k, "torch") == 0 && nt == 2) {
                snprintf(set->torch_version, sizeof set->torch_version, "%s", tok[1]);
            } else if (strcmp(k, "numpy") == 0 && nt == 2) {
                /* informational */
            } else if (strcmp(k, "cases") == 0 && nt == 2) {
                uint64_t v;
                if (parse_u64(tok[1], &v) || v > 100000)
                    BAD();
                else
                    declared = (size_t)v;
            } else if (strcmp(k, "case") == 0 && nt == 2) {
                if (set->n_cases == cap) {
                    size_t ncap = cap ? cap * 2 : 64;
                    fx_case *nc = realloc(set->cases, ncap * sizeof *nc);
                    if (!nc) {
                        rc = fail(err, errlen, "out of memory");
                        break;
                    }
                    set->cases = nc;
                    cap = ncap;
                }
                c = &set->cases[set->n_cases++];
                case_init(c);
                copy_name(c->name, tok[1]);
            } else {
                rc = fail(err, errlen, "manifest line %zu: unexpected '%s' outside a case", lineno, k);
            }
            continue;
        }
        if (strcmp(k, "end") == 0 && nt == 1) {
            rc = finish_case(c, err, errlen);
            c = NULL;
        } else if (strcmp(k, "blob") == 0 && nt == 2) {
            if (strchr(tok[1], '/') || strlen(tok[1]) >= FX_NAME_MAX)
                BAD();
            else
                copy_name(c->blob, tok[1]);
        } else if (strcmp(k, "shape") == 0 && nt >= 3) {
            uint64_t nd;
            if (parse_u64(tok[1], &nd) || nd < 1 || nd > FX_MAX_DIMS || (int)nd != nt - 2) {
                BAD();
                continue;
            }
            c->ndim = (size_t)nd;
            size_t n = 1;
            for (size_t d = 0; d < nd; d++) {
                uint64_t v;
                if (parse_u64(tok[2 + d], &v) || v == 0 || v > 0x3FFFFFFF || n > 0x3FFFFFFF / v) {
                    BAD();
                    break;
                }
                c->shape[d] = (int64_t)v;
                n *= (size_t)v;
            }
            c->n = n;
            c->rows = nd >= 2 ? (size_t)c->shape[0] : 0;
        } else if (strcmp(k, "input") == 0 && nt == 3 && strcmp(tok[1], "f32") == 0) {
            strcpy(c->input_kind, "f32");
            if (parse_off(tok[2], &c->off_input)) BAD();
        } else if (strcmp(k, "input") == 0 && nt == 4 && strcmp(tok[1], "prng") == 0) {
            uint64_t seed;
            float probe;
            if (strlen(tok[2]) >= sizeof c->input_kind || parse_u64(tok[3], &seed) || seed == 0 ||
                seed > 0xFFFFFFFFu || fx_prng_fill(tok[2], 1, &probe, 0)) {
                BAD();
                continue;
            }
            strcpy(c->input_kind, tok[2]);
            c->seed = (uint32_t)seed;
        } else if (strcmp(k, "alpha") == 0 && nt == 2) {
            if (parse_f32_bits(tok[1], &c->alpha)) BAD();
        } else if (strcmp(k, "trits") == 0 && nt == 2) {
            if (parse_off(tok[1], &c->off_trits)) BAD();
        } else if (strcmp(k, "values") == 0 && nt == 2) {
            if (parse_off(tok[1], &c->off_values)) BAD();
        } else if (strcmp(k, "row_alphas") == 0 && nt == 2) {
            if (parse_off(tok[1], &c->off_row_alphas)) BAD();
        } else if (strcmp(k, "row_trits") == 0 && nt == 2) {
            if (parse_off(tok[1], &c->off_row_trits)) BAD();
        } else if (strcmp(k, "row_values") == 0 && nt == 2) {
            if (parse_off(tok[1], &c->off_row_values)) BAD();
        } else if (strcmp(k, "lsq") == 0 && nt == 4) {
            if (c->n_lsq == FX_MAX_LSQ) {
                BAD();
                continue;
            }
            fx_lsq *q = &c->lsq[c->n_lsq];
            memset(q, 0, sizeof *q);
            q->values_off = -1;
            if (parse_f32_bits(tok[1], &q->alpha) || parse_off(tok[2], &q->trits_off) ||
                (strcmp(tok[3], "-") != 0 && parse_off(tok[3], &q->values_off))) {
                BAD();
                continue;
            }
            c->n_lsq++;
        } else if (strcmp(k, "deadzone") == 0 && nt == 13) {
            if (c->n_deadzone == FX_MAX_DEADZONE) {
                BAD();
                continue;
            }
            fx_deadzone *d = &c->deadzone[c->n_deadzone];
            double *dv[7] = {&d->band,     &d->alpha,         &d->frac_neg,       &d->frac_zero,
                             &d->frac_pos, &d->frac_boundary, &d->frac_zero_inner};
            uint64_t *cv[5] = {&d->n_neg, &d->n_zero, &d->n_pos, &d->n_boundary, &d->n_zero_inner};
            int bad = 0;
            for (int i = 0; i < 7; i++) bad |= parse_double(tok[1 + i], dv[i]);
            for (int i = 0; i < 5; i++) bad |= parse_u64(tok[8 + i], cv[i]);
            if (bad)
                BAD();
            else
                c->n_deadzone++;
        } else {
            rc = fail(err, errlen, "manifest line %zu: unknown or malformed '%s'", lineno, k);
        }
#undef BAD
    }
    free(text);
    if (rc == 0 && !magic) rc = fail(err, errlen, "%s: empty manifest", path);
    if (rc == 0 && c) rc = fail(err, errlen, "%s: case %s has no 'end'", path, c->name);
    if (rc == 0 && declared != set->n_cases)
        rc = fail(err, errlen, "%s: %zu cases, header says %zu", path, set->n_cases, declared);
    if (rc) fx_close(set);
    return rc;
}

void fx_close(fx_set *set) {
    if (set->cases) {
        for (size_t i = 0; i < set->n_cases; i++) fx_case_unload(&set->cases[i]);
        free(set->cases);
    }
    free(set->blob_data);
    set->blob_data = NULL;
    set->blob_name[0] = '\0';
    set->cases = NULL;
    set->n_cases = 0;
}

/* ---------------------------------------------------------------------------------------------
 * blobs
 * ------------------------------------------------------------------------------------------- */
static int in_range(size_t size, long off, size_t len) {
    return off >= 0 && (size_t)off <= size && len <= size - (size_t)off;
}

static float *load_f32(const unsigned char *blob, size_t size, long off, size_t n) {
    if (!in_range(size, off, n * 4)) return NULL;
    float *out = malloc(n ? n * sizeof *out : 1);
    if (!out) return NULL;
    const unsigned char *p = blob + off;
    for (size_t i = 0; i < n; i++) { /* little-endian on disk, whatever the host */
        uint32_t b = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                     (uint32_t)p[4 * i + 3] << 24;
        memcpy(&out[i], &b, 4);
    }
    return out;
}

static int8_t *load_trits(const unsigned char *blob, size_t size, long off, size_t n) {
    if (!in_range(size, off, (n + 3) / 4)) return NULL;
    int8_t *out = malloc(n ? n : 1);
    if (!out) return NULL;
    const unsigned char *p = blob + off;
    for (size_t i = 0; i < n; i++) {
        unsigned code = (p[i / 4] >> (2 * (i % 4))) & 3u;
        if (code == 3) {
            free(out);
            return NULL;
        }
        out[i] = (int8_t)((int)code - 1);
    }
    return out;
}

int fx_case_load(fx_set *set, fx_case *c, char *err, size_t errlen) {
    fx_case_unload(c);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", set->dir, c->blob);
    if (!set->blob_data || strcmp(set->blob_name, c->blob) != 0) { /* cases are ordered by blob */
        free(set->blob_data);
        set->blob_data = read_file(path, &set->blob_len);
        if (!set->blob_data) {
            set->blob_name[0] = '\0';
            return fail(err, errlen, "case %s: cannot read %s", c->name, path);
        }
        snprintf(set->blob_name, sizeof set->blob_name, "%s", c->blob);
    }
    const unsigned char *b = set->blob_data;
    size_t size = set->blob_len, n = c->n;
    const char *what = NULL;
    if (strcmp(c->input_kind, "f32") == 0) {
        if (!(c->input = load_f32(b, size, c->off_input, n))) what = "input";
    } else {
        c->input = malloc(n * sizeof *c->input);
        if (!c->input || fx_prng_fill(c->input_kind, c->seed, c->input, n)) what = "input (prng)";
    }
    if (!what && !(c->trits = load_trits(b, size, c->off_trits, n))) what = "trits";
    if (!what && c->off_values >= 0 && !(c->values = load_f32(b, size, c->off_values, n))) what = "values";
    if (!what && c->off_row_alphas >= 0 && !(c->row_alphas = load_f32(b, size, c->off_row_alphas, c->rows)))
        what = "row_alphas";
    if (!what && c->off_row_trits >= 0 && !(c->row_trits = load_trits(b, size, c->off_row_trits, n)))
        what = "row_trits";
    if (!what && c->off_row_values >= 0 && !(c->row_values = load_f32(b, size, c->off_row_values, n)))
        what = "row_values";
    for (size_t i = 0; !what && i < c->n_lsq; i++) {
        fx_lsq *q = &c->lsq[i];
        if (!(q->trits = load_trits(b, size, q->trits_off, n)))
            what = "lsq trits";
        else if (q->values_off >= 0 && !(q->values = load_f32(b, size, q->values_off, n)))
            what = "lsq values";
    }
    if (what) {
        fx_case_unload(c);
        return fail(err, errlen, "case %s: cannot load %s from %s (out of range, bad code or no memory)",
                    c->name, what, path);
    }
    return 0;
}

void fx_case_unload(fx_case *c) {
    free(c->input);
    free(c->trits);
    free(c->values);
    free(c->row_alphas);
    free(c->row_trits);
    free(c->row_values);
    c->input = c->values = c->row_alphas = c->row_values = NULL;
    c->trits = c->row_trits = NULL;
    for (size_t i = 0; i < c->n_lsq; i++) {
        free(c->lsq[i].trits);
        free(c->lsq[i].values);
        c->lsq[i].trits = NULL;
        c->lsq[i].values = NULL;
    }
}

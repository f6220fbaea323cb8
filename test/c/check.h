/* check.h — the C tests' tiny harness: CHECK records a failure and goes on; every test
 * executable ends with check_report(), which prints "N passed, M failed" and gives the exit code. */
#ifndef TL_TEST_CHECK_H
#define TL_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_passed_, check_failed_;

#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (cond) {                                                                                          \
            check_passed_++;                                                                                 \
        } else {                                                                                             \
            check_failed_++;                                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                         \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fputc('\n', stderr);                                                                             \
        }                                                                                                    \
    } while (0)

static inline int check_report(const char *suite) {
    printf("%s: %d passed, %d failed\n", suite, check_passed_, check_failed_);
    return check_failed_ ? 1 : 0;
}

/* The tests' input stream: xorshift32 (seed it by assigning check_rng). */
static uint32_t check_rng = 0x2545F491u;
static inline uint32_t check_rnd(void) {
    check_rng ^= check_rng << 13, check_rng ^= check_rng >> 17, check_rng ^= check_rng << 5;
    return check_rng;
}

/* A heap copy of exactly len bytes (no NUL after it): reads past it are caught by ASan. */
static inline char *exact(const void *s, size_t len) {
    char *p = malloc(len ? len : 1);
    if (p && len) memcpy(p, s, len);
    return p;
}

#endif

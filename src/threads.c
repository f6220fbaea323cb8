/* threads.c — the parallel-for of the threaded WebAssembly builds (dist/tilelli-*-mt.wasm).
 *
 * A threaded build is compiled with wasm atomics and linked against a shared, imported memory.
 * Workers (js/threads.js: Node worker_threads, web Workers) instantiate the same module over the
 * same memory, give themselves a stack (the __stack_pointer export, a block tl_threads_stack
 * allocated) and call tl_threads_worker, which never returns: it sleeps in memory.atomic.wait32
 * until the calling thread posts a job, takes tasks from it, and sleeps again.
 *
 * A job is a function, its context and a task count. The calling thread (the one that called the
 * library: a browser's main thread may not block, so it never waits in memory.atomic.wait32) posts
 * it, takes tasks itself, then spins until every worker has left the job. Tasks are numbered and
 * taken from one atomic counter, so a worker that is slow to wake (a busy machine) costs only its
 * share: the others take its tasks. Which thread runs a task never changes what it computes (each
 * output is written by one task, in the order one thread would write it), so results are the same
 * bits for any thread count.
 *
 * Workers run kernel slices only, on memory the calling thread allocated: wasi-libc is not built
 * for threads, so malloc and everything that keeps state stay on the calling thread.
 *
 * Builds without atomics (the emcc SIMD128 and scalar builds, the relaxed build, the native
 * library) have no workers: tl__parallel is a plain loop. */
#include "internal.h"

#if defined(__wasm__) && defined(__wasm_atomics__)
#define TL_THREADS 1
#else
#define TL_THREADS 0
#endif

#define TL__MAX_THREADS 64

static unsigned tl__nthreads = 1; /* threads in use, the calling thread included (calling thread only) */

unsigned tl__threads_n(void) { return tl__nthreads; }

uint64_t tl__par_min_work = (uint64_t)1 << 20;

#if TL_THREADS
#include <stdlib.h>

/* The job in flight. gen changes once per job (the workers wait on it): a counter in its high
 * bits, the number of workers the job uses in its low 8 (read in the same load, so a worker never
 * mixes two jobs). busy counts the job's workers that have not yet left it. The plain fields are
 * written before gen's (sequentially consistent) store and read after a worker saw it. */
static struct {
    uint32_t gen, next, busy, ready;
    uint32_t ntasks;
    tl__task_fn fn;
    void *ctx;
} tl__job;

/* A worker spins this many polls of gen before it sleeps: a model's layers come microseconds
 * apart, and waking a sleeping thread costs tens of microseconds. */
#define TL__SPIN 20000
#define TL__SLEEP_NS 100000000 /* 100 ms */

static void tl__take_tasks(unsigned thread) {
    uint32_t n = tl__job.ntasks;
    for (;;) {
        uint32_t i = __atomic_fetch_add(&tl__job.next, 1, __ATOMIC_SEQ_CST);
        if (i >= n) break;
        tl__job.fn(tl__job.ctx, i, thread);
    }
}

/* Worker ids are 1, 2, ... in the order the workers reach their loop, so that the ones in use
 * (id <= nworkers) are all running whichever failed to start. */
void tl_threads_worker(void) {
    uint32_t seen = 0, id = __atomic_add_fetch(&tl__job.ready, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        uint32_t g;
        unsigned spins = 0;
        while ((g = __atomic_load_n(&tl__job.gen, __ATOMIC_SEQ_CST)) == seen) {
            if (spins++ < TL__SPIN) continue;
            /* a bounded sleep: a runtime that ends the process terminates its workers, and Deno
             * cannot interrupt an unbounded memory.atomic.wait32 (the process would hang) */
            __builtin_wasm_memory_atomic_wait32((int *)&tl__job.gen, (int)seen, TL__SLEEP_NS);
        }
        seen = g;
        if (id > (g & 255)) continue; /* not one of this job's workers */
        tl__take_tasks(id);
        __atomic_fetch_sub(&tl__job.busy, 1, __ATOMIC_SEQ_CST);
    }
}

uint32_t tl_threads_ready(void) { return __atomic_load_n(&tl__job.ready, __ATOMIC_SEQ_CST); }

/* A worker's stack: bytes from malloc (not counted by tl_mem_live_bytes: it lives as long as the
 * instance), its top returned (stacks grow down), 0 when out of memory. */
uintptr_t tl_threads_stack(size_t bytes) {
    uint8_t *p = malloc(bytes);
    return p ? ((uintptr_t)p + bytes) & ~(uintptr_t)15 : 0;
}

uint32_t tl_threads_set(uint32_t n) {
    unsigned ready = tl_threads_ready();
    if (n < 1) n = 1;
    if (n > ready + 1) n = ready + 1; /* only workers that are in their loop */
    if (n > TL__MAX_THREADS) n = TL__MAX_THREADS;
    tl__nthreads = n;
    return n;
}

void tl__parallel(size_t ntasks, tl__task_fn fn, void *ctx) {
    unsigned workers = tl__nthreads - 1;
    if (workers == 0 || ntasks < 2) {
        for (size_t i = 0; i < ntasks; i++) fn(ctx, i, 0);
        return;
    }
    if (workers > ntasks - 1) workers = (unsigned)ntasks - 1;
    tl__job.fn = fn, tl__job.ctx = ctx, tl__job.ntasks = (uint32_t)ntasks;
    __atomic_store_n(&tl__job.next, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&tl__job.busy, workers, __ATOMIC_SEQ_CST);
    __atomic_store_n(&tl__job.gen, ((tl__job.gen >> 8) + 1) << 8 | workers, __ATOMIC_SEQ_CST);
    __builtin_wasm_memory_atomic_notify((int *)&tl__job.gen, 0xFFFFFFFFu); /* all: the sleepers may not be this job's */
    tl__take_tasks(0);
    while (__atomic_load_n(&tl__job.busy, __ATOMIC_SEQ_CST)) {
    }
}
#else
uint32_t tl_threads_set(uint32_t n) {
    (void)n;
    return 1;
}

void tl__parallel(size_t ntasks, tl__task_fn fn, void *ctx) {
    for (size_t i = 0; i < ntasks; i++) fn(ctx, i, 0);
}
#endif

uint32_t tl_threads(void) { return tl__nthreads; }

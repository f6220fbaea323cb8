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

/* The job in flight. `word` packs the job's number (bits 32..63), how many threads have joined it
 * (16..31) and the next task (0..15); a thread takes a task with one compare-and-swap of the whole
 * word, so a worker that woke late for an older job can never take a task of a newer one (its
 * swap fails), and the job's fields (written before the word, read after a successful swap) are
 * those of the job whose task it took. A thread's first task of a job also gives it its slot: the
 * join count before it (0 .. threads - 1), which indexes per-thread scratch. `done` counts the
 * finished tasks: the caller waits for those only, never for a worker that has not woken up. `gen`
 * is the job's number again, for the sleepers (memory.atomic.wait32 takes 32 bits). */
static struct {
    uint64_t word;
    uint32_t gen, done, ready, ntasks, nthreads;
    tl__task_fn fn;
    void *ctx;
} tl__job;

#define TL__NEXT_MASK 0xFFFFull
#define TL__JOIN_ONE 0x10000ull

/* A worker spins this many polls of gen (some tens of microseconds) before it sleeps: a model's
 * layers and an application's back-to-back calls come microseconds apart, and waking a sleeping
 * thread costs tens of microseconds. Longer spins burn a core that, on a busy machine, the calling
 * thread's own serial work needs (measured: 100k polls made an MNIST epoch 0.88x of one thread at
 * load average 4, 5k polls 0.98x). */
#define TL__SPIN 30000
#define TL__SLEEP_NS 100000000 /* 100 ms */

/* Take and run tasks of job g until none is left (or the job is no longer g). */
static void tl__take_tasks(uint32_t g) {
    int slot = -1;
    for (;;) {
        uint64_t w = __atomic_load_n(&tl__job.word, __ATOMIC_SEQ_CST), want;
        if ((uint32_t)(w >> 32) != g) return;
        uint32_t i = (uint32_t)(w & TL__NEXT_MASK), joined = (uint32_t)(w >> 16) & 0xFFFF;
        if (i >= __atomic_load_n(&tl__job.ntasks, __ATOMIC_SEQ_CST)) return;
        if (slot < 0 && joined >= __atomic_load_n(&tl__job.nthreads, __ATOMIC_SEQ_CST)) return; /* full */
        want = w + 1 + (slot < 0 ? TL__JOIN_ONE : 0);
        if (!__atomic_compare_exchange_n(&tl__job.word, &w, want, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            continue;
        if (slot < 0) slot = (int)joined;
        /* The swap made this a task of job g, which cannot end before it is done: its fields hold. */
        if (i >= tl__job.ntasks) return;
        tl__job.fn(tl__job.ctx, i, (unsigned)slot);
        __atomic_fetch_add(&tl__job.done, 1, __ATOMIC_SEQ_CST);
    }
}

void tl_threads_worker(void) {
    uint32_t seen = __atomic_load_n(&tl__job.gen, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&tl__job.ready, 1, __ATOMIC_SEQ_CST);
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
        tl__take_tasks(g);
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
    if (tl__nthreads < 2 || ntasks < 2 || ntasks > TL__NEXT_MASK) {
        for (size_t i = 0; i < ntasks; i++) fn(ctx, i, 0);
        return;
    }
    uint32_t g = tl__job.gen + 1;
    /* First the word says job g with no task left: a worker still looking at the previous job
     * (which read the new fields below) cannot swap that job's word any more. */
    __atomic_store_n(&tl__job.word, (uint64_t)g << 32 | TL__NEXT_MASK, __ATOMIC_SEQ_CST);
    tl__job.fn = fn, tl__job.ctx = ctx;
    __atomic_store_n(&tl__job.ntasks, (uint32_t)ntasks, __ATOMIC_SEQ_CST);
    __atomic_store_n(&tl__job.nthreads, tl__nthreads, __ATOMIC_SEQ_CST);
    __atomic_store_n(&tl__job.done, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&tl__job.word, (uint64_t)g << 32, __ATOMIC_SEQ_CST);
    __atomic_store_n(&tl__job.gen, g, __ATOMIC_SEQ_CST);
    __builtin_wasm_memory_atomic_notify((int *)&tl__job.gen, tl__nthreads - 1);
    tl__take_tasks(g);
    while (__atomic_load_n(&tl__job.done, __ATOMIC_SEQ_CST) < ntasks) {
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

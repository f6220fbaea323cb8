/* mem.c — the allocator the bindings use to place buffers in (wasm) memory. */
#include <stdlib.h>

#include "tilelli.h"

void *tl_alloc(size_t size) { return size ? malloc(size) : NULL; }

void tl_free(void *p) { free(p); }

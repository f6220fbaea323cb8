/* wasi_none.c — only in the relaxed-SIMD build (clang-19 + wasi-libc, dist/tilelli-relaxed.wasm).
 *
 * The library does no I/O, but wasi-libc's vsnprintf (error details, JSON numbers) links its stdio,
 * whose exit-time flush of stdout/stderr refers to fd_write, fd_seek and fd_close. These
 * definitions take the place of wasi-libc's imports, so the module imports nothing but its
 * memory, like the Emscripten builds: nothing calls them, and if anything did it would get EBADF. */
#include <wasi/api.h>

__wasi_errno_t __wasi_fd_close(__wasi_fd_t fd) {
    (void)fd;
    return __WASI_ERRNO_BADF;
}

__wasi_errno_t __wasi_fd_seek(__wasi_fd_t fd, __wasi_filedelta_t offset, __wasi_whence_t whence,
                              __wasi_filesize_t *newoffset) {
    (void)fd, (void)offset, (void)whence, (void)newoffset;
    return __WASI_ERRNO_BADF;
}

__wasi_errno_t __wasi_fd_write(__wasi_fd_t fd, const __wasi_ciovec_t *iovs, size_t iovs_len, __wasi_size_t *nwritten) {
    (void)fd, (void)iovs, (void)iovs_len, (void)nwritten;
    return __WASI_ERRNO_BADF;
}

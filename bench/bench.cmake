# bench/bench.cmake — the kernel-benchmark baselines' own wasm: bench/f32_gemv.c (float32 SIMD128
# GEMV/GEMM) and bench/bandwidth.c (v128 read bandwidth) in one standalone module,
# ${CMAKE_BINARY_DIR}/bench-kernels.wasm, loaded by bench/baselines.mjs.
#
# Include it from the top CMakeLists.txt inside if(TILELLI_WASM), after EMCC is found:
#     include(bench/bench.cmake)
# It needs EMCC (path to emcc). It is not part of the npm package, so it goes to the build folder,
# not to dist/. bench/baselines.mjs compiles the same sources with the same flags (its EMCC_FLAGS)
# when this output is missing: keep the two flag lists in sync.

set(TL_BENCH_KERNELS_WASM ${CMAKE_BINARY_DIR}/bench-kernels.wasm)
set(TL_BENCH_KERNELS_SOURCES ${CMAKE_CURRENT_LIST_DIR}/f32_gemv.c ${CMAKE_CURRENT_LIST_DIR}/bandwidth.c)
# No -ffp-contract=off here, unlike the library: these are timing baselines, not bit-exact code
# (and wasm SIMD128 has no fused multiply-add to contract into anyway).
set(TL_BENCH_KERNELS_FLAGS -O3 -msimd128 -std=c11 -Wall -Wextra
    -sSTANDALONE_WASM --no-entry -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB -sABORTING_MALLOC=0
    -sEXPORTED_FUNCTIONS=_malloc,_free,_bench_f32_gemm,_bench_read_sum)

add_custom_command(
  OUTPUT ${TL_BENCH_KERNELS_WASM}
  COMMAND ${CMAKE_COMMAND} -E env NODE_PATH=/usr/share/nodejs
          ${EMCC} ${TL_BENCH_KERNELS_FLAGS} ${TL_BENCH_KERNELS_SOURCES} -o ${TL_BENCH_KERNELS_WASM}
  DEPENDS ${TL_BENCH_KERNELS_SOURCES} ${CMAKE_CURRENT_LIST_FILE}
  COMMENT "emcc: bench-kernels.wasm (f32 GEMV baseline, read bandwidth)"
  VERBATIM)
add_custom_target(bench_kernels_wasm ALL DEPENDS ${TL_BENCH_KERNELS_WASM})

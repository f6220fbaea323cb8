# test/fuzz/fuzz.cmake — the libFuzzer targets (test/fuzz/README.md), built with clang whatever
# compiler the project uses, since libFuzzer is clang's. include() it from the top-level
# CMakeLists.txt after enable_testing(). Gives, when clang links -fsanitize=fuzzer:
#   fuzz_json, fuzz_safetensors, fuzz_model, fuzz_pack, fuzz_kernels, fuzz_quant, fuzz_gguf   the fuzzers (ASan + UBSan), in <build>/fuzz/
#   tests fuzz_<t>_corpus          every committed seed run once (a regression test, ~1 s)
#   target fuzz-run                each fuzzer for TILELLI_FUZZ_SECONDS, growing a corpus in
#                                  <build>/fuzz/corpus/<t>, crashes in <build>/fuzz/artifacts/
# Without clang or its libFuzzer runtime (Debian: libclang-rt-14-dev) it says so and adds nothing.
option(TILELLI_FUZZ "Build the libFuzzer targets with clang (test/fuzz)" ON)
set(TILELLI_FUZZ_SECONDS 60 CACHE STRING "Seconds per fuzzer for the fuzz-run target")
if(NOT TILELLI_FUZZ)
  return()
endif()

get_filename_component(TL_FUZZ_ROOT "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
set(TL_FUZZ_BIN ${CMAKE_BINARY_DIR}/fuzz)
find_program(TL_FUZZ_CC NAMES clang-14 clang)
if(NOT TL_FUZZ_CC)
  message(STATUS "fuzz: no clang found (apt-get install -y clang-14 libclang-rt-14-dev): fuzzers skipped")
  return()
endif()

# Probe once: can this clang link a fuzzer with the sanitizers?
file(MAKE_DIRECTORY ${TL_FUZZ_BIN})
file(WRITE ${TL_FUZZ_BIN}/probe.c
  "#include <stddef.h>\n#include <stdint.h>\n"
  "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
set(TL_FUZZ_FLAGS -std=c11 -g -O1 -fno-omit-frame-pointer -ffp-contract=off
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
execute_process(
  COMMAND ${TL_FUZZ_CC} ${TL_FUZZ_FLAGS} ${TL_FUZZ_BIN}/probe.c -o ${TL_FUZZ_BIN}/probe
  RESULT_VARIABLE TL_FUZZ_PROBE OUTPUT_QUIET ERROR_QUIET)
if(NOT TL_FUZZ_PROBE EQUAL 0)
  message(STATUS "fuzz: ${TL_FUZZ_CC} cannot link -fsanitize=fuzzer "
                 "(apt-get install -y libclang-rt-14-dev): fuzzers skipped")
  return()
endif()
message(STATUS "fuzz: building ${TL_FUZZ_TARGETS} (fuzz_<name>) with ${TL_FUZZ_CC}")

# The whole core: the model target runs what it loads through the kernels.
set(TL_FUZZ_LIB ${TL_SOURCES})
list(TRANSFORM TL_FUZZ_LIB PREPEND ${TL_FUZZ_ROOT}/)
set(TL_FUZZ_HEADERS ${TL_FUZZ_ROOT}/include/tilelli.h ${TL_FUZZ_ROOT}/src/internal.h ${TL_FUZZ_ROOT}/src/json.h
    ${TL_FUZZ_ROOT}/src/simd.h ${TL_FUZZ_ROOT}/src/gguf.h)
set(TL_FUZZ_TARGETS json safetensors model pack kernels quant gguf)
set(TL_FUZZ_RUN "")
foreach(t IN LISTS TL_FUZZ_TARGETS)
  set(exe ${TL_FUZZ_BIN}/fuzz_${t})
  add_custom_command(
    OUTPUT ${exe}
    COMMAND ${TL_FUZZ_CC} ${TL_FUZZ_FLAGS} ${TL_NATIVE_FLAGS} -Wall -Wextra -I${TL_FUZZ_ROOT}/include -I${TL_FUZZ_ROOT}/src
            ${TL_FUZZ_ROOT}/test/fuzz/fuzz_${t}.c ${TL_FUZZ_LIB} -lm -o ${exe}
    DEPENDS ${TL_FUZZ_ROOT}/test/fuzz/fuzz_${t}.c ${TL_FUZZ_ROOT}/test/fuzz/fuzz_common.h ${TL_FUZZ_LIB} ${TL_FUZZ_HEADERS}
    COMMENT "clang: fuzz_${t} (libFuzzer, ASan, UBSan)"
    VERBATIM)
  add_custom_target(fuzz_${t} ALL DEPENDS ${exe})
  # -runs=0: load (run) every seed once, mutate nothing, write nothing
  add_test(NAME fuzz_${t}_corpus COMMAND ${exe} -runs=0 ${TL_FUZZ_ROOT}/test/fuzz/corpus/${t})
  list(APPEND TL_FUZZ_RUN
    COMMAND ${CMAKE_COMMAND} -E make_directory ${TL_FUZZ_BIN}/corpus/${t} ${TL_FUZZ_BIN}/artifacts
    COMMAND ${exe} -max_total_time=${TILELLI_FUZZ_SECONDS} -print_final_stats=1
            -dict=${TL_FUZZ_ROOT}/test/fuzz/json.dict -artifact_prefix=${TL_FUZZ_BIN}/artifacts/${t}-
            ${TL_FUZZ_BIN}/corpus/${t} ${TL_FUZZ_ROOT}/test/fuzz/corpus/${t})
endforeach()
add_custom_target(fuzz-run ${TL_FUZZ_RUN} DEPENDS fuzz_json fuzz_safetensors fuzz_model fuzz_pack fuzz_kernels
                  fuzz_quant fuzz_gguf USES_TERMINAL VERBATIM)

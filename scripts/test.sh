#!/usr/bin/env bash
# Every test: C (native, ASan+UBSan, wasm SIMD128 and scalar under WASI), the TypeScript
# declarations against a typed example, the Node tests of the JS API on both wasm builds, and the
# Python package's tests (python/tests).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== C tests (ctest)"
ctest --test-dir build --output-on-failure

echo "== Fuzzing: each libFuzzer target (json, safetensors, model, pack, kernels, quant, gguf) for ${TILELLI_FUZZ_SECONDS:-60} s"
cmake -S . -B build -DTILELLI_FUZZ_SECONDS="${TILELLI_FUZZ_SECONDS:-60}" >/dev/null
if cmake --build build --target fuzz-run >build/fuzz-run.log 2>&1; then
  grep -E "^(Done [0-9]+ runs|stat::number_of_executed_units)" build/fuzz-run.log || true
else
  tail -40 build/fuzz-run.log
  echo "a fuzzer failed (log: build/fuzz-run.log, inputs: build/fuzz/artifacts/)" >&2
  exit 1
fi

echo "== TypeScript declarations (tsc)"
npx tsc -p test/types

echo "== JS tests (node --test): the API in Node, then the same sample in every runtime"
# --expose-gc: the leak tests force garbage collection before they measure the JS heap
node --expose-gc --test test/js/ test/runtimes/

echo "== Model bench checks: every network and contender of bench/models.mjs computes what it should (no timing)"
node bench/models.mjs --check

echo "== Python tests (pytest): the tilelli package against the fixtures and the reference, export run by the CLI and Node"
/usr/bin/python3 -m pytest -q -p no:cacheprovider python/tests

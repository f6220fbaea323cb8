#!/usr/bin/env bash
# Every test: C (native, ASan+UBSan, wasm SIMD128 and scalar under WASI), the TypeScript
# declarations against a typed example, and the Node tests of the JS API on both wasm builds.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== C tests (ctest)"
ctest --test-dir build --output-on-failure

echo "== TypeScript declarations (tsc)"
npx tsc -p test/types

echo "== JS tests (node --test): the API in Node, then the same sample in every runtime"
node --test test/js/ test/runtimes/

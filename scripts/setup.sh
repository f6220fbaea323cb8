#!/usr/bin/env bash
# Everything a fresh Debian 12 machine with Node 20 needs before tilelli builds and tests:
# Debian packages (only those missing), npm packages, then the CMake build (native + wasm).
# Idempotent and quick when there is nothing to do; `npm start` and `npm test` call it first.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v emcc >/dev/null 2>&1 || missing+=(emscripten)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v make >/dev/null 2>&1 || missing+=(make)
# SIMDe: the native build compiles the wasm SIMD128 loops to SSE/AVX with it (src/simd.h).
[ -f /usr/include/simde/wasm/simd128.h ] || missing+=(libsimde-dev)
# clang and its libFuzzer runtime for the fuzz targets (test/fuzz/)
command -v clang-14 >/dev/null 2>&1 || missing+=(clang-14)
ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || missing+=(libclang-rt-14-dev)
# The relaxed-SIMD build (dist/tilelli-relaxed.wasm): clang-19 and wasm-ld-19 (bookworm), the wasm32
# compiler runtime and wasi-libc (Emscripten 3.1.6's clang-14 cannot emit relaxed opcodes).
command -v clang-19 >/dev/null 2>&1 || missing+=(clang-19)
command -v wasm-ld-19 >/dev/null 2>&1 || missing+=(lld-19)
[ -f /usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a ] || missing+=(libclang-rt-19-dev-wasm32)
[ -f /usr/lib/wasm32-wasi/libc.a ] || missing+=(wasi-libc)
# Debian's Chromium, driven by playwright-core in the browser tests (no browser download here).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# Python: the tilelli package (python/) runs its tests, the fixture generators and the PyTorch
# benchmarks on Debian's PyTorch (PyPI is not needed); python3-venv for the pip-install test.
# Public-domain text read offline by the tokenizer tests (test/js/bpe-fixtures.js): the Jargon File, fortunes.
for pkg in python3-torch python3-numpy python3-pytest python3-venv libopenblas0-pthread jargon-text fortunes; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# emcc writes its system-library cache next to itself; fall back to a user cache when that is read-only.
if [ ! -w "$(dirname "$(readlink -f "$(command -v emcc)")")/../share/emscripten/cache" ] 2>/dev/null &&
   [ -z "${EM_CACHE:-}" ] && [ "$(id -u)" -ne 0 ]; then
  export EM_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/emscripten"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

mkdir -p build
if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j"$(nproc)"; } >build/build.log 2>&1; then
  cat build/build.log
  echo "setup: the build failed (log above, also in build/build.log)" >&2
  exit 1
fi

# config.capnp — workerd configuration for test/workerd/worker.js, used by
# test/runtimes/workerd.test.js: it bundles the worker (esbuild, conditions workerd/worker/browser)
# into worker.bundle.js next to a copy of this file and of the three wasm builds, then runs
# `workerd test config.capnp`, which calls the worker's test() handler.
#
# workerd compiles no wasm from bytes at run time: each build is declared here as a wasm module,
# under the name the bundle imports it by, and arrives in the worker as a WebAssembly.Module.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .tilelliWorker) ],
);

const tilelliWorker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.bundle.js"),
    (name = "tilelli-relaxed.wasm", wasm = embed "tilelli-relaxed.wasm"),
    (name = "tilelli-simd.wasm", wasm = embed "tilelli-simd.wasm"),
    (name = "tilelli-scalar.wasm", wasm = embed "tilelli-scalar.wasm"),
  ],
  # The worker calls its own fetch handler through this binding, as a client would.
  bindings = [ (name = "SELF", service = "main") ],
  compatibilityDate = "2025-06-01",
);

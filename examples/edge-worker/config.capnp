# config.capnp — plain workerd: `node build.mjs && npx workerd serve config.capnp`
# (then POST http://127.0.0.1:8787/predict). build.mjs bundles worker.js into build/worker.js and
# copies the wasm build it imports (tilelli/serve's SIMD128 serving build) and model.tlm next to
# it; every module the bundle imports is declared here under the name it imports. workerd compiles
# wasm modules from this config only: it compiles no wasm from bytes at run time.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .predictor) ],
  # --socket-addr http=127.0.0.1:PORT on the command line overrides the address.
  sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "main") ],
);

const predictor :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "build/worker.js"),
    (name = "tilelli-serve-simd.wasm", wasm = embed "build/tilelli-serve-simd.wasm"),
    # The packed model as a data module: the worker imports it as an ArrayBuffer.
    (name = "model.tlm", data = embed "build/model.tlm"),
  ],
  compatibilityDate = "2025-06-01",
);

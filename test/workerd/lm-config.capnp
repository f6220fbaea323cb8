# lm-config.capnp — workerd configuration for test/workerd/lm-worker.js, used by
# test/runtimes/workerd-lm.test.js: the bundled worker, the wasm builds as wasm modules, and the
# language-model files as data and text modules (workerd reads no files at run time).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .lmWorker) ],
);

const lmWorker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.bundle.js"),
    (name = "tilelli-relaxed.wasm", wasm = embed "tilelli-relaxed.wasm"),
    (name = "tilelli-simd.wasm", wasm = embed "tilelli-simd.wasm"),
    (name = "tilelli-scalar.wasm", wasm = embed "tilelli-scalar.wasm"),
    (name = "charlm.safetensors", data = embed "charlm.safetensors"),
    (name = "tokenizer.json", text = embed "tokenizer.json"),
    (name = "golden-config.json", text = embed "golden-config.json"),
    (name = "golden-model.safetensors", data = embed "golden-model.safetensors"),
    (name = "golden.json", text = embed "golden.json"),
  ],
  compatibilityDate = "2025-06-01",
);

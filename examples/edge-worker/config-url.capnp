# config-url.capnp — plain workerd with the model fetched once per isolate from MODEL_URL:
# `node build.mjs worker-url.js && npx workerd serve config-url.capnp`. The bundle imports only
# the wasm build; worker-url.js fetches MODEL_URL on the first request and keeps the model.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .predictor),
    # The worker's fetch() goes out through this network. "local" lets it reach a model server on
    # this machine (127.0.0.1, as the test does); keep only "public" when the model is elsewhere.
    (name = "outbound", network = (allow = ["public", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "main") ],
);

const predictor :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "build/worker.js"),
    (name = "tilelli-serve-simd.wasm", wasm = embed "build/tilelli-serve-simd.wasm"),
  ],
  bindings = [ (name = "MODEL_URL", text = "http://127.0.0.1:8788/model.tlm") ],
  globalOutbound = "outbound",
  compatibilityDate = "2025-06-01",
);

// servers.mjs — start this example on 127.0.0.1 under workerd, `deno serve` or Node, for the test
// (test/runtimes/edge-worker.test.js) and the benchmark (bench/edge.mjs). Each start returns
// { origin, pid, startedAt, rss(), cpu(), stop() }; the server is a child process killed by its pid.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
export const bins = {
  workerd: join(root, 'node_modules', '.bin', 'workerd'),
  deno: join(root, 'node_modules', '.bin', 'deno'),
};

/** Resident and peak resident memory of a process, in bytes (Linux /proc). */
export function rssOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return { rss: NaN, peak: NaN };
  }
}

/**
 * CPU time a process has used, in ms: the sum over its threads of /proc/PID/task/TID/schedstat's
 * first field (nanoseconds on a CPU). Unlike wall time, it does not grow while the process waits
 * for a CPU that other jobs hold.
 */
export function cpuOf(pid) {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {} // a thread that just ended
    }
    return ns / 1e6;
  } catch {
    return NaN;
  }
}

function track(child, name) {
  let output = '';
  child.stdout?.on('data', (d) => { output += d; });
  child.stderr?.on('data', (d) => { output += d; });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    pid: child.pid,
    output: () => output,
    exited,
    rss: () => rssOf(child.pid),
    cpu: () => cpuOf(child.pid),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
    name,
  };
}

/**
 * `workerd serve config` in cwd, on a socket this process opened first (127.0.0.1, a free port)
 * and hands over as fd 3: a request can be sent the moment workerd is spawned, and waits in the
 * socket's backlog until workerd accepts it, so the first response times the whole start.
 * args: more of workerd's flags (--inspector-addr=...).
 */
export async function startWorkerd({ cwd, config = 'config.capnp', socket = 'http', args = [] }) {
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog: 64 }, resolve);
  });
  const { port } = server.address();
  const fd = server._handle?.fd; // Node's listening socket; the child gets its own copy as fd 3
  if (!Number.isInteger(fd) || fd < 0) throw new Error('startWorkerd: this Node does not expose the listening socket\'s descriptor');
  const startedAt = performance.now();
  const child = spawn(bins.workerd, ['serve', config, `--socket-fd=${socket}=3`, ...args], {
    cwd, stdio: ['ignore', 'pipe', 'pipe', fd],
  });
  server.close(); // synchronously drops this process's descriptor before its event loop accepts anything
  return { ...track(child, 'workerd'), origin: `http://127.0.0.1:${port}`, startedAt };
}

/** Start a server that prints its URL (Deno, Node); resolves once it printed it. */
async function startPrinting(file, args, options, name) {
  const startedAt = performance.now();
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const handle = track(child, name);
  const origin = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // never leave a server behind
      reject(new Error(`${name} did not start in 30 s:\n${handle.output()}`));
    }, 30_000);
    const look = () => {
      const m = handle.output().match(/http:\/\/(?:127\.0\.0\.1|localhost):(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${m[1]}`);
      }
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    handle.exited.then(({ code, signal }) => reject(new Error(`${name} exited (${code ?? signal}) before listening:\n${handle.output()}`)));
  });
  return { ...handle, origin, startedAt };
}

/** `deno serve` on deno.js (the model: MODEL, or model.tlm next to it); downloads nothing. */
export function startDeno({ model, cwd = here } = {}) {
  const env = { PATH: process.env.PATH, HOME: cwd, DENO_DIR: join(tmpdir(), 'tilelli-edge-deno-dir'), DENO_NO_UPDATE_CHECK: '1', DENO_NO_PACKAGE_JSON: '1', NO_COLOR: '1' };
  const args = ['serve', `--config=${join(here, 'deno.json')}`, '--no-lock', '--no-remote', '--no-npm', '--cached-only', '--no-prompt',
    '--host=127.0.0.1', '--port=0', `--allow-read=${here},${join(root, 'dist')}${model ? `,${model}` : ''}`];
  if (model) {
    args.push('--allow-env=MODEL');
    env.MODEL = model;
  }
  args.push(join(here, 'deno.js'));
  return startPrinting(bins.deno, args, { cwd, env }, 'deno');
}

/** node.js (the Node HTTP server entry) on a free port. */
export function startNode({ model } = {}) {
  const args = [join(here, 'node.js'), '--port=0', ...(model ? [`--model=${model}`] : [])];
  return startPrinting(process.execPath, args, { cwd: here }, 'node');
}

/** Resolve once origin answers GET /model (polling every 2 ms), or throw after timeoutMs. */
export async function waitForOrigin(origin, timeoutMs = 30_000) {
  const end = performance.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(`${origin}/model`);
      await r.arrayBuffer();
      return r;
    } catch (e) {
      if (performance.now() > end) throw e;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }
}

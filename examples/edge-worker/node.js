// node.js — the same handler in a Node HTTP server (Node 20+: Request and Response are global).
// The model is read from disk once, at start.
//
//   node node.js [--port 8787] [--host 127.0.0.1] [--model model.tlm]
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import { createHandler } from './handler.js';

const { values: args } = parseArgs({
  options: { port: { type: 'string', default: '8787' }, host: { type: 'string', default: '127.0.0.1' }, model: { type: 'string' } },
});
const model = await readFile(args.model ?? new URL('./model.tlm', import.meta.url));
const handler = createHandler({ model, runtime: 'node' });

/**
 * The request body as a web stream. Unlike Readable.toWeb, cancelling it (the handler refusing a
 * body past its limit) discards the rest instead of destroying the socket, so the client reads
 * the 413 rather than a reset connection.
 */
function bodyOf(req) {
  let open = true;
  return new ReadableStream({
    start(controller) {
      req.on('data', (chunk) => {
        if (!open) return;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if (controller.desiredSize <= 0) req.pause();
      });
      req.once('end', () => open && (open = false, controller.close()));
      req.once('error', (e) => open && (open = false, controller.error(e)));
    },
    pull() { req.resume(); },
    cancel() {
      open = false;
      req.resume();
    },
  }, { highWaterMark: 1 });
}

const server = createServer(async (req, res) => {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  const request = new Request(new URL(req.url, `http://${req.headers.host ?? args.host}`), {
    method: req.method, headers, body: hasBody ? bodyOf(req) : undefined, duplex: 'half',
  });
  const response = await handler.fetch(request);
  const head = Object.fromEntries(response.headers);
  // A body refused before its end (413) is discarded, and the connection closed after the answer:
  // say so, so that the client does not send its next request on it.
  if (hasBody && !req.complete) head.connection = 'close';
  res.writeHead(response.status, head);
  res.end(Buffer.from(await response.arrayBuffer()));
});
server.listen(Number(args.port), args.host, () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}`);
});

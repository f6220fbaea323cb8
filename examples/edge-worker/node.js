// node.js — the same handler in a Node HTTP server (Node 20+: Request and Response are global).
// The model is read from disk once, at start.
//
//   node node.js [--port 8787] [--host 127.0.0.1] [--model model.tlm]
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';

import { createHandler } from './handler.js';

const { values: args } = parseArgs({
  options: { port: { type: 'string', default: '8787' }, host: { type: 'string', default: '127.0.0.1' }, model: { type: 'string' } },
});
const model = await readFile(args.model ?? new URL('./model.tlm', import.meta.url));
const handler = createHandler({ model, runtime: 'node' });

const server = createServer(async (req, res) => {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  const request = new Request(new URL(req.url, `http://${req.headers.host ?? args.host}`), {
    method: req.method, headers, body: hasBody ? Readable.toWeb(req) : undefined, duplex: 'half',
  });
  const response = await handler.fetch(request);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
});
server.listen(Number(args.port), args.host, () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}`);
});

// A static server for the browser example: the page from this folder at /, the kafka-edge
// npm package (built by `scripts/wasm build`) at /pkg/. Loopback only, no dependencies.
//
//   node examples/browser/serve.mjs [--port P] [--host H] [--pkg DIR]
//
// --port defaults to $PORT or 8080 (0: any free port); --host to 127.0.0.1; --pkg to
// $KAFKA_EDGE_PKG or target/wasm-pkg of this repository. Prints one line to stdout once
// it listens: `serving http://HOST:PORT/ (package from DIR)`; tests read the URL from it.
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const a = {
    port: Number(process.env.PORT ?? 8080),
    host: '127.0.0.1',
    pkg: process.env.KAFKA_EDGE_PKG ?? path.resolve(here, '../../target/wasm-pkg'),
  };
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--port': a.port = Number(value()); break;
      case '--host': a.host = value(); break;
      case '--pkg': a.pkg = path.resolve(value()); break;
      case '-h': case '--help':
        console.log('node serve.mjs [--port P] [--host H] [--pkg DIR]');
        return process.exit(0);
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new Error(`bad port ${a.port}`);
  return a;
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm', // WebAssembly.instantiateStreaming insists on it
  '.ts': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/** The file `urlPath` names under `base`, or null if it would leave `base`. */
function within(base, urlPath) {
  const file = path.resolve(base, '.' + path.posix.normalize('/' + urlPath));
  return file === base || file.startsWith(base + path.sep) ? file : null;
}

const args = parseArgs(process.argv.slice(2));
try {
  statSync(path.join(args.pkg, 'kafka_edge.js'));
} catch {
  console.error(`serve.mjs: no package in ${args.pkg} (build it: scripts/wasm build)`);
  process.exit(1);
}

const server = http.createServer((req, res) => {
  let urlPath;
  try {
    urlPath = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  } catch {
    res.writeHead(400).end('bad path\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  let file;
  if (urlPath === '/') file = path.join(here, 'index.html');
  else if (urlPath.startsWith('/pkg/')) file = within(args.pkg, urlPath.slice('/pkg'.length));
  else if (urlPath === '/serve.mjs') file = null; // the server is not part of the page
  else file = within(here, urlPath);
  let st;
  try {
    st = file && statSync(file);
  } catch {
    st = null;
  }
  if (!st || !st.isFile()) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${urlPath}\n`);
    return;
  }
  res.writeHead(200, {
    'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
    'content-length': st.size,
    // A rebuilt package shows up on reload.
    'cache-control': 'no-store',
  });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
});

server.listen(args.port, args.host, () => {
  const { port } = server.address();
  const host = args.host.includes(':') ? `[${args.host}]` : args.host;
  console.log(`serving http://${host}:${port}/ (package from ${args.pkg})`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));

/**
 * Loopback HTTP servers for tests: a listener that tracks its servers for
 * clean-up, a port that refuses connections, and the two misbehaving replies
 * the client's limits are tested against (a body that streams forever, one
 * that trickles forever).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Starts `handler` on 127.0.0.1 (port 0: any free port), adds the server to `servers`, returns `http://127.0.0.1:PORT`. */
export async function listenOn(servers: Server[], handler: Handler, port = 0): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Closes every server in `servers`, dropping open connections (for `after`). */
export function closeAll(servers: Server[]): void {
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
}

/** A loopback port nobody listens on (bound, noted, closed): connections to it are refused. */
export async function refusedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Answers 200 and streams `chunkBytes` chunks of spaces for as long as the client reads (with back-pressure). */
export function endlessReply(chunkBytes = 64 * 1024): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(chunkBytes, 0x20);
    const pump = () => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  };
}

/** Answers 200 and writes `text` every `everyMs` until the client goes away: a body that never completes. */
export function trickleReply(text = ' ', everyMs = 10): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write(text)), everyMs);
    res.on('close', () => clearInterval(timer));
  };
}

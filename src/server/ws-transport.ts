/**
 * graphql-ws over the `ws` server, like graphql-ws's own `useServer`
 * (graphql-ws/use/ws), with one difference: how a message is sent.
 *
 * `useServer` resolves each send only when the frame was written, and
 * graphql-ws pulls a subscription's next result only after that, so every
 * message costs its own write system call. A fan-out of 1,000 changes to 200
 * subscribers was 200,000 writes, most of the gateway's CPU.
 *
 * Here a send is queued on a corked socket (uncorked on the next event-loop
 * turn, so the frames of one turn leave in one writev) and resolves at once
 * while the socket holds less than HIGH_WATER_BYTES unsent; past that it
 * resolves when its frame is written, as before. So a client that reads
 * slowly still stops its subscriptions being pulled (the change feed then
 * buffers and, past its stall limit, closes it: change-subscription.ts), and
 * the gateway never holds more than about HIGH_WATER_BYTES per socket.
 * Latency: a frame waits at most for the end of the current event-loop turn,
 * which the change subscriptions keep short (they yield every 10 ms).
 *
 * Keep-alive, error and close handling are graphql-ws's own, kept as they are.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { CloseCode, handleProtocols, makeServer, type ServerOptions } from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';

/** Unsent bytes a socket may hold before a send waits for its frame to be written. */
export const HIGH_WATER_BYTES = 1 << 20;

export interface WsExtra { readonly socket: WebSocket; readonly request: IncomingMessage }

type Closeable = { close(code: number, reason: string): void };
const closeInternal = (socket: Closeable, err: unknown): void => {
  socket.close(CloseCode.InternalServerError, process.env.NODE_ENV === 'production' ? 'Internal server error' : String(err instanceof Error ? err.message : err).slice(0, 100) || 'Internal server error');
};

/** Wires graphql-ws onto `wss`; dispose() closes every connection and the server. */
export function serveGraphqlWs<P extends Record<string, unknown>, E extends Record<PropertyKey, unknown>>(
  options: ServerOptions<P, WsExtra & Partial<E>>,
  wss: WebSocketServer,
  keepAliveMs = 12_000,
): { dispose(): Promise<void> } {
  const server = makeServer(options);
  wss.options.handleProtocols = handleProtocols;
  wss.once('error', (err) => {
    for (const client of wss.clients) { try { closeInternal(client, err); } catch { /* already closing */ } }
  });
  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    socket.once('error', (err) => closeInternal(socket, err));
    let pongWait: NodeJS.Timeout | null = null;
    const pingInterval = keepAliveMs > 0 && Number.isFinite(keepAliveMs) ? setInterval(() => {
      if (socket.readyState !== socket.OPEN) return;
      pongWait = setTimeout(() => socket.terminate(), keepAliveMs);
      socket.once('pong', () => { if (pongWait) { clearTimeout(pongWait); pongWait = null; } });
      socket.ping();
    }, keepAliveMs) : null;

    // ws keeps the TCP socket in a private field; without it, sends simply are not coalesced.
    const raw = (socket as unknown as { _socket?: Socket })._socket;
    let corked = false;
    const send = (data: string): Promise<void> => {
      if (socket.readyState !== socket.OPEN) return Promise.resolve();
      if (raw && !corked) {
        corked = true;
        raw.cork();
        setImmediate(() => { corked = false; raw.uncork(); });
      }
      if (socket.bufferedAmount < HIGH_WATER_BYTES) {
        socket.send(data); // a write failure closes the socket, which ends its subscriptions
        return Promise.resolve();
      }
      return new Promise((resolve, reject) => socket.send(data, (err) => (err ? reject(err) : resolve())));
    };

    const closed = server.opened(
      {
        protocol: socket.protocol,
        send,
        close: (code, reason) => socket.close(code, reason),
        onMessage: (cb) => socket.on('message', async (event) => {
          try { await cb(String(event)); } catch (err) { closeInternal(socket, err); }
        }),
      },
      { socket, request } as WsExtra & Partial<E>,
    );
    socket.once('close', (code, reason) => {
      if (pongWait) clearTimeout(pongWait);
      if (pingInterval) clearInterval(pingInterval);
      void closed(code, String(reason));
    });
  });
  return {
    async dispose() {
      for (const client of wss.clients) client.close(1001, 'Going away');
      wss.removeAllListeners();
      await new Promise<void>((resolve, reject) => wss.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

import { createServer, type Server, type Socket } from 'node:net';
import {
  Command,
  ErrorCodec,
  ExtCommand,
  encodePacket,
  FrameDecoder,
  HEARTBEAT_FRAME,
  OkCodec,
  type Packet,
  RouteQueryCodec,
} from '../../src/protocol/index.js';

/** What a fake gateway does with one packet it read: nothing, unless the test says. */
export type FakeBehaviour = (p: Packet, socket: Socket, gw: FakeGateway) => void;

/**
 * A "gateway" on a real socket (port 0, or a given port to come back on after a restart): a
 * plain net server speaking the packet codec of src/protocol, doing to each packet what the test
 * says. It records what it read, per command, so a test can count route queries and pushes.
 */
export class FakeGateway {
  readonly packets: Packet[] = [];
  readonly sockets = new Set<Socket>();
  /** Connections accepted, over the gateway's life. */
  accepted = 0;
  /** Echo heartbeats (a live gateway does). */
  heartbeats = true;
  port = 0;
  private server: Server | undefined;

  constructor(public behaviour: FakeBehaviour) {}

  async listen(port = 0): Promise<number> {
    const server = createServer({ noDelay: true }, (s) => {
      this.accepted++;
      this.sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => this.sockets.delete(s));
      const dec = new FrameDecoder(
        {
          onPacket: (p) => {
            this.packets.push(p);
            this.behaviour(p, s, this);
          },
          onHeartbeat: () => {
            if (this.heartbeats && !s.destroyed) s.write(HEARTBEAT_FRAME);
          },
        },
        { maxBodyLength: 16 * 1024 * 1024 },
      );
      s.on('data', (c: Buffer) => {
        try {
          dec.push(c);
        } catch {
          s.destroy();
        }
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    return this.port;
  }

  count(cmd: number): number {
    return this.packets.filter((p) => p.cmd === cmd).length;
  }

  /** Closes the listener and every connection (a gateway that goes away). */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

export function okFrame(p: Packet, data: string): Buffer {
  return encodePacket({
    cmd: Command.OK,
    flags: 0,
    sessionId: p.sessionId,
    body: OkCodec.encode({ cmd: p.cmd, code: 0, data }),
  });
}

export function errorFrame(p: Packet, code: number, reason: string): Buffer {
  return encodePacket({
    cmd: Command.ERROR,
    flags: 0,
    sessionId: p.sessionId,
    body: ErrorCodec.encode({ cmd: p.cmd, code, reason, data: '' }),
  });
}

/** The OK a node sends for a delivered push. */
export function pushOk(p: Packet): Buffer {
  return okFrame(p, JSON.stringify({ userId: 'u', clientType: 1, timePoints: { received: Date.now() } }));
}

/** Answers a route query: every user has one MOBILE route to `port` on 127.0.0.1. */
export function routeAnswer(p: Packet, port: number): Buffer {
  const { userIds } = RouteQueryCodec.decode(p.body);
  const out: Record<string, unknown[]> = {};
  for (const u of userIds) out[u] = [{ clientType: 1, host: '127.0.0.1', port, connId: `c-${u}` }];
  return okFrame(p, JSON.stringify(out));
}

/** Routes to this gateway for any route query, and `onPush` for the pushes. */
export function routesHere(onPush: FakeBehaviour): FakeBehaviour {
  return (p, s, gw) => {
    if (p.cmd === ExtCommand.GATEWAY_ROUTE_QUERY) s.write(routeAnswer(p, gw.port));
    else if (p.cmd === Command.GATEWAY_PUSH) onPush(p, s, gw);
  };
}

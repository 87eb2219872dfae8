// MPush's WebSocket JSON wire (mpush-wire §10): one JSON object per text frame, no encryption, no fast
// connect, no heartbeat frame (liveness is WebSocket ping/pong). Browser-safe: no Node imports here or
// in what it imports.

import { Command, Flags } from '../../protocol/command.js';
import { decodeJsonPacket, encodeJsonPacket, type JsonPacket } from '../../protocol/json-packet.js';
import type {
  DeviceHandshake,
  DeviceProfile,
  DeviceWire,
  WireHandler,
  WireHttpRequest,
  WireTypes,
} from './device-protocol.js';

/** The JSON wire's types: text frames, parsed packets, text content. */
export interface JsonWireTypes extends WireTypes {
  frame: string;
  packet: JsonPacket;
  content: string;
}

// MPush's web clients are lenient about bodies: a missing or mistyped field reads as empty.
function str(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  return typeof v === 'string' ? v : '';
}

function num(body: Record<string, unknown>, key: string): number {
  const v = body[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function handshakeOf(body: Record<string, unknown>): DeviceHandshake {
  // As the server sent them; MPush's web handshake reply may carry none of these.
  return {
    sessionId: str(body, 'sessionId'),
    heartbeat: num(body, 'heartbeat'),
    expireTime: num(body, 'expireTime'),
    fast: false,
  };
}

/** One WebSocket connection's JSON wire. It holds nothing but its protocol. */
export class JsonWire implements DeviceWire<JsonWireTypes> {
  private handler: WireHandler<JsonWireTypes> | undefined;

  get heartbeatFrame(): undefined {
    return undefined;
  }

  attach(handler: WireHandler<JsonWireTypes>): void {
    this.handler = handler;
  }

  /** One text frame. A frame that is not a packet is reported and skipped: the next one is whole. */
  receive(text: string): void {
    const h = this.handler!;
    let p: JsonPacket;
    try {
      p = decodeJsonPacket(text);
    } catch (err) {
      h.receivedBadInput(err, false);
      return;
    }
    const body = p.body;
    switch (p.cmd) {
      case Command.HANDSHAKE:
        h.receivedHandshake(handshakeOf(body));
        break;
      case Command.OK:
        // Before the handshake, OK {cmd: HANDSHAKE} is a handshake reply too.
        if (!h.ready && num(body, 'cmd') === Command.HANDSHAKE) h.receivedHandshake(handshakeOf(body));
        else
          h.receivedOk({
            cmd: num(body, 'cmd'),
            code: num(body, 'code'),
            data: str(body, 'data'),
            sessionId: p.sessionId,
          });
        break;
      case Command.ERROR:
        h.receivedError({
          cmd: num(body, 'cmd'),
          code: num(body, 'code'),
          reason: str(body, 'reason'),
          data: str(body, 'data'),
          sessionId: p.sessionId,
        });
        break;
      case Command.PUSH:
        h.receivedPush(str(body, 'content'), p.sessionId, p.flags);
        break;
      case Command.KICK:
        h.receivedKick({ deviceId: str(body, 'deviceId'), userId: str(body, 'userId') });
        break;
      case Command.HTTP_PROXY:
        h.receivedHttpResponse(p.sessionId, {
          statusCode: num(body, 'statusCode'),
          reasonPhrase: str(body, 'reasonPhrase'),
          headers: str(body, 'headers'),
          body: str(body, 'body'),
        });
        break;
      default:
        h.receivedPacket(p);
    }
  }

  handshake(sessionId: number, deviceId: string, profile: DeviceProfile): string {
    return encodeJsonPacket(Command.HANDSHAKE, sessionId, {
      deviceId,
      osName: profile.osName,
      osVersion: profile.osVersion,
      clientVersion: profile.clientVersion,
    });
  }

  bind(cmd: number, sessionId: number, userId: string, tags: string, data: string): string {
    return encodeJsonPacket(cmd, sessionId, { userId, tags, data });
  }

  ack(sessionId: number): string {
    return encodeJsonPacket(Command.ACK, sessionId, {});
  }

  push(sessionId: number, content: string, flags: number): string {
    return encodeJsonPacket(Command.PUSH, sessionId, { content }, flags | Flags.JSON_BODY);
  }

  /** mpush-ts's JSON form of HttpRequest (MPush's web clients have none): its fields by name, a text body. */
  httpRequest(sessionId: number, r: WireHttpRequest<string>): string {
    return encodeJsonPacket(Command.HTTP_PROXY, sessionId, {
      method: r.method,
      uri: r.uri,
      headers: r.headers,
      body: r.body,
    });
  }

  openContent(content: string): string {
    return content;
  }

  reset(): void {}

  release(): void {}
}

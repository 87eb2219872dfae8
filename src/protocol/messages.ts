import { BodyReader, BodyWriter } from './body.js';
import { ProtocolError } from './errors.js';
import { decodePushExt, encodePushExt, type PushExt } from './push-ext.js';

/**
 * Every message body of mpush-wire §3, each as a codec: `encode` builds the plain body (before
 * compression and encryption), `decode` reads one and throws {@link ProtocolError} on bad input.
 * Null strings decode as `''` and null bytes as an empty buffer: MPush writes both as `00 00`.
 * Trailing bytes after the last field are ignored, as MPush ignores them.
 */
export interface MessageCodec<T> {
  encode(message: T): Buffer;
  decode(body: Buffer): T;
}

/** Client → server, RSA-encrypted (mpush-wire §5). */
export interface HandshakeMessage {
  deviceId: string;
  osName: string;
  osVersion: string;
  clientVersion: string;
  iv: Buffer;
  clientKey: Buffer;
  minHeartbeat: number;
  maxHeartbeat: number;
  /** The Java SDK always sends 0; never checked. */
  timestamp: number;
}

export const HandshakeCodec: MessageCodec<HandshakeMessage> = {
  encode: (m) =>
    new BodyWriter(96)
      .writeString(m.deviceId)
      .writeString(m.osName)
      .writeString(m.osVersion)
      .writeString(m.clientVersion)
      .writeBytes(m.iv)
      .writeBytes(m.clientKey)
      .writeInt(m.minHeartbeat)
      .writeInt(m.maxHeartbeat)
      .writeLong(m.timestamp)
      .finish(),
  decode: (body) => {
    const r = new BodyReader(body);
    return {
      deviceId: r.readString(),
      osName: r.readString(),
      osVersion: r.readString(),
      clientVersion: r.readString(),
      iv: r.readBytes(),
      clientKey: r.readBytes(),
      minHeartbeat: r.readInt(),
      maxHeartbeat: r.readInt(),
      timestamp: r.readLong(),
    };
  },
};

/** Server → client reply to a handshake, AES(clientKey, iv)-encrypted. */
export interface HandshakeOkMessage {
  serverKey: Buffer;
  heartbeat: number;
  sessionId: string;
  expireTime: number;
}

export const HandshakeOkCodec: MessageCodec<HandshakeOkMessage> = {
  encode: (m) =>
    new BodyWriter(96)
      .writeBytes(m.serverKey)
      .writeInt(m.heartbeat)
      .writeString(m.sessionId)
      .writeLong(m.expireTime)
      .finish(),
  decode: (body) => {
    const r = new BodyReader(body);
    return {
      serverKey: r.readBytes(),
      heartbeat: r.readInt(),
      sessionId: r.readString(),
      expireTime: r.readLong(),
    };
  },
};

export interface FastConnectMessage {
  sessionId: string;
  deviceId: string;
  minHeartbeat: number;
  maxHeartbeat: number;
}

export const FastConnectCodec: MessageCodec<FastConnectMessage> = {
  encode: (m) =>
    new BodyWriter(64)
      .writeString(m.sessionId)
      .writeString(m.deviceId)
      .writeInt(m.minHeartbeat)
      .writeInt(m.maxHeartbeat)
      .finish(),
  decode: (body) => {
    const r = new BodyReader(body);
    return {
      sessionId: r.readString(),
      deviceId: r.readString(),
      minHeartbeat: r.readInt(),
      maxHeartbeat: r.readInt(),
    };
  },
};

export interface FastConnectOkMessage {
  heartbeat: number;
}

export const FastConnectOkCodec: MessageCodec<FastConnectOkMessage> = {
  encode: (m) => new BodyWriter(4).writeInt(m.heartbeat).finish(),
  decode: (body) => ({ heartbeat: new BodyReader(body).readInt() }),
};

/** BIND and UNBIND. `data` is the slot the Java SDK calls `alias`; the server reads a bind token there. */
export interface BindUserMessage {
  userId: string;
  data: string;
  tags: string;
}

export const BindUserCodec: MessageCodec<BindUserMessage> = {
  encode: (m) => new BodyWriter(64).writeString(m.userId).writeString(m.data).writeString(m.tags).finish(),
  decode: (body) => {
    const r = new BodyReader(body);
    return { userId: r.readString(), data: r.readString(), tags: r.readString() };
  },
};

export interface OkMessage {
  /** The command being answered. */
  cmd: number;
  code: number;
  data: string;
}

export const OkCodec: MessageCodec<OkMessage> = {
  encode: (m) => new BodyWriter(32).writeByte(m.cmd).writeByte(m.code).writeString(m.data).finish(),
  decode: (body) => {
    const r = new BodyReader(body);
    return { cmd: r.readByte(), code: r.readByte(), data: r.readString() };
  },
};

export interface ErrorMessage {
  /** The command being answered. */
  cmd: number;
  /** An MPush error code (mpush-wire §4), as a signed byte. */
  code: number;
  reason: string;
  data: string;
}

export const ErrorCodec: MessageCodec<ErrorMessage> = {
  encode: (m) =>
    new BodyWriter(48).writeByte(m.cmd).writeByte(m.code).writeString(m.reason).writeString(m.data).finish(),
  decode: (body) => {
    const r = new BodyReader(body);
    return { cmd: r.readByte(), code: r.readByte(), reason: r.readString(), data: r.readString() };
  },
};

export interface KickMessage {
  deviceId: string;
  userId: string;
}

export const KickCodec: MessageCodec<KickMessage> = {
  encode: (m) => new BodyWriter(48).writeString(m.deviceId).writeString(m.userId).finish(),
  decode: (body) => {
    const r = new BodyReader(body);
    return { deviceId: r.readString(), userId: r.readString() };
  },
};

/** HTTP methods of HttpRequest (mpush-wire §3). */
export const HttpMethod = { GET: 0, POST: 1, PUT: 2, DELETE: 3 } as const;

export interface HttpRequestMessage {
  method: number;
  uri: string;
  /** `name:value` lines joined by `\n`. */
  headers: string;
  body: Buffer;
}

export const HttpRequestCodec: MessageCodec<HttpRequestMessage> = {
  encode: (m) =>
    new BodyWriter(128)
      .writeByte(m.method)
      .writeString(m.uri)
      .writeString(m.headers)
      .writeBytes(m.body)
      .finish(),
  decode: (body) => {
    const r = new BodyReader(body);
    return { method: r.readByte(), uri: r.readString(), headers: r.readString(), body: r.readBytes() };
  },
};

export interface HttpResponseMessage {
  statusCode: number;
  reasonPhrase: string;
  headers: string;
  body: Buffer;
}

export const HttpResponseCodec: MessageCodec<HttpResponseMessage> = {
  encode: (m) =>
    new BodyWriter(128)
      .writeInt(m.statusCode)
      .writeString(m.reasonPhrase)
      .writeString(m.headers)
      .writeBytes(m.body)
      .finish(),
  decode: (body) => {
    const r = new BodyReader(body);
    return {
      statusCode: r.readInt(),
      reasonPhrase: r.readString(),
      headers: r.readString(),
      body: r.readBytes(),
    };
  },
};

/** Push client → gateway. The ack model travels in the packet flags. */
export interface GatewayPushMessage {
  /** `''` means broadcast. */
  userId: string;
  clientType: number;
  /** Milliseconds; 0 means the server default (mpush-wire §12). */
  timeout: number;
  content: Buffer;
  taskId: string;
  /** Sent as a JSON array string; `null` when absent. */
  tags: string[] | null;
  condition: string;
  /**
   * mpush-ts extension, appended after MPush's fields (MPush ignores trailing bytes): the
   * broadcast rate in pushes per second (0 = the server default) and the most devices a
   * broadcast may reach (0 = no limit). Absent on MPush push clients' packets.
   */
  broadcastRate?: number;
  broadcastMax?: number;
  /**
   * mpush-ts extension after broadcastMax: the inbox options of a unicast push, as one JSON
   * string (gateway-ext.ts, {@link PushExt}). A push client that sends it is answered with the
   * message's id and store outcome; one that does not (MPush's PushClient) gets MPush's replies.
   */
  ext?: PushExt;
}

function decodeTags(json: string): string[] | null {
  if (json === '') return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ProtocolError('MPUSH_ERR_BAD_FIELD', 'gateway push tags are not JSON');
  }
  if (parsed === null) return null;
  if (!Array.isArray(parsed) || !parsed.every((t) => typeof t === 'string')) {
    throw new ProtocolError('MPUSH_ERR_BAD_FIELD', 'gateway push tags must be a JSON array of strings');
  }
  return parsed;
}

export const GatewayPushCodec: MessageCodec<GatewayPushMessage> = {
  encode: (m) => {
    const w = new BodyWriter(64 + m.content.length)
      .writeString(m.userId)
      .writeInt(m.clientType)
      .writeInt(m.timeout)
      .writeBytes(m.content)
      .writeString(m.taskId)
      .writeString(m.tags ? JSON.stringify(m.tags) : null)
      .writeString(m.condition)
      .writeInt(m.broadcastRate ?? 0)
      .writeInt(m.broadcastMax ?? 0);
    // Only a push client that uses the extension sends it: other bodies stay byte for byte.
    if (m.ext) w.writeString(encodePushExt(m.ext));
    return w.finish();
  },
  decode: (body) => {
    const r = new BodyReader(body);
    const m: GatewayPushMessage = {
      userId: r.readString(),
      clientType: r.readInt(),
      timeout: r.readInt(),
      content: r.readBytes(),
      taskId: r.readString(),
      tags: decodeTags(r.readString()),
      condition: r.readString(),
    };
    if (r.remaining >= 8) {
      m.broadcastRate = Math.max(0, r.readInt());
      m.broadcastMax = Math.max(0, r.readInt());
      if (r.remaining >= 2) {
        const ext = r.readString();
        if (ext !== '') m.ext = decodePushExt(ext);
      }
    }
    return m;
  },
};

export interface GatewayKickMessage {
  userId: string;
  deviceId: string;
  connId: string;
  clientType: number;
  targetServer: string;
  targetPort: number;
}

export const GatewayKickCodec: MessageCodec<GatewayKickMessage> = {
  encode: (m) =>
    new BodyWriter(96)
      .writeString(m.userId)
      .writeString(m.deviceId)
      .writeString(m.connId)
      .writeInt(m.clientType)
      .writeString(m.targetServer)
      .writeInt(m.targetPort)
      .finish(),
  decode: (body) => {
    const r = new BodyReader(body);
    return {
      userId: r.readString(),
      deviceId: r.readString(),
      connId: r.readString(),
      clientType: r.readInt(),
      targetServer: r.readString(),
      targetPort: r.readInt(),
    };
  },
};

import { createServer, type Server, type Socket } from 'node:net';
import {
  AesCipher,
  deflate,
  generateRsaKeyPair,
  inflate,
  mixKey,
  publicKeyToBase64,
  RsaDecryptor,
  randomKey,
} from '../../../src/crypto/index.js';
import {
  Command,
  ErrorCodec,
  encodePacket,
  FastConnectCodec,
  type FastConnectMessage,
  FastConnectOkCodec,
  Flags,
  FrameDecoder,
  HandshakeCodec,
  type HandshakeMessage,
  HandshakeOkCodec,
  HEARTBEAT_FRAME,
  OkCodec,
  type Packet,
} from '../../../src/protocol/index.js';

const keys = generateRsaKeyPair(1024);
/** The test server's public key, as a device SDK is configured with it. */
export const TEST_PUBLIC_KEY = publicKeyToBase64(keys.publicKey);
const decryptor = new RsaDecryptor(keys.privateKey);

/** Waits for `n` items of a growing list, or fails after `timeoutMs` (no timing asserts: a hang guard). */
function waitFor(
  check: () => boolean,
  subscribe: (wake: () => void) => () => void,
  what: string,
  timeoutMs: number,
) {
  return new Promise<void>((resolve, reject) => {
    if (check()) return resolve();
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    const unsubscribe = subscribe(() => {
      if (!check()) return;
      clearTimeout(timer);
      unsubscribe();
      resolve();
    });
  });
}

/**
 * The server side of one device connection, scripted by a test: it reads packets in order, and
 * answers with the MPush server's ciphers (RSA in, AES(clientKey) for HandshakeOk, then the mixed key).
 */
export class Peer {
  readonly packets: Packet[] = [];
  /** Every chunk received, as it came: for byte-exact checks. */
  readonly received: Buffer[] = [];
  heartbeats = 0;
  closed = false;
  /** Echo heartbeats as the MPush server does. */
  echoHeartbeats = true;
  cipher: AesCipher | undefined;
  sessionKey: Buffer | undefined;
  iv: Buffer | undefined;
  private read = 0;
  private readonly listeners = new Set<() => void>();
  private readonly decoder: FrameDecoder;

  constructor(readonly socket: Socket) {
    this.decoder = new FrameDecoder(
      {
        onPacket: (p) => {
          this.packets.push({ ...p, body: Buffer.from(p.body) });
          this.wake();
        },
        onHeartbeat: () => {
          this.heartbeats++;
          if (this.echoHeartbeats) socket.write(HEARTBEAT_FRAME);
          this.wake();
        },
      },
      { maxBodyLength: 1024 * 1024 },
    );
    socket.on('data', (c: Buffer) => {
      this.received.push(c);
      this.decoder.push(c);
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  private wake(): void {
    for (const l of [...this.listeners]) l();
  }

  private subscribe = (wake: () => void): (() => void) => {
    this.listeners.add(wake);
    return () => this.listeners.delete(wake);
  };

  /** The next packet the device sent (heartbeats are counted, not returned). */
  async next(timeoutMs = 5000): Promise<Packet> {
    await waitFor(
      () => this.packets.length > this.read,
      this.subscribe,
      'a packet from the device',
      timeoutMs,
    );
    return this.packets[this.read++]!;
  }

  /** Resolves when the device has sent `n` heartbeats in all. */
  waitHeartbeats(n: number, timeoutMs = 5000): Promise<void> {
    return waitFor(() => this.heartbeats >= n, this.subscribe, `${n} heartbeats`, timeoutMs);
  }

  waitClosed(timeoutMs = 5000): Promise<void> {
    return waitFor(() => this.closed, this.subscribe, 'the socket to close', timeoutMs);
  }

  /** The body of a device packet, decrypted if CRYPTO (inflated if COMPRESS). */
  open(p: Packet): Buffer {
    let body = p.body;
    if ((p.flags & Flags.CRYPTO) !== 0) body = this.cipher!.decrypt(body);
    if ((p.flags & Flags.COMPRESS) !== 0) body = inflate(body, 16 * 1024 * 1024);
    return body;
  }

  /** Reads the next packet, checks it is a HANDSHAKE and decrypts it with the server's private key. */
  async expectHandshake(): Promise<{ packet: Packet; message: HandshakeMessage }> {
    const packet = await this.next();
    if (packet.cmd !== Command.HANDSHAKE) throw new Error(`expected HANDSHAKE, got command ${packet.cmd}`);
    const message = HandshakeCodec.decode(decryptor.decrypt(packet.body));
    return { packet, message };
  }

  /** Answers a handshake as mpush-wire §5: HandshakeOk under AES(clientKey, iv), then the mixed key. */
  acceptHandshake(
    request: { packet: Packet; message: HandshakeMessage },
    reply: { sessionId: string; heartbeat?: number; expireTime?: number },
  ): void {
    const { clientKey, iv } = request.message;
    const serverKey = randomKey();
    const body = HandshakeOkCodec.encode({
      serverKey,
      heartbeat: reply.heartbeat ?? 180_000,
      sessionId: reply.sessionId,
      expireTime: reply.expireTime ?? Date.now() + 86_400_000,
    });
    const first = new AesCipher(clientKey, iv);
    this.sendPacket({
      cmd: Command.HANDSHAKE,
      flags: Flags.CRYPTO,
      sessionId: request.packet.sessionId,
      body: first.encrypt(body),
    });
    this.useKey(mixKey(clientKey, serverKey), iv);
  }

  /** Reads the next packet, checks it is a FAST_CONNECT (sent raw) and decodes it. */
  async expectFastConnect(): Promise<{ packet: Packet; message: FastConnectMessage }> {
    const packet = await this.next();
    if (packet.cmd !== Command.FAST_CONNECT)
      throw new Error(`expected FAST_CONNECT, got command ${packet.cmd}`);
    if (packet.flags !== 0) throw new Error('FAST_CONNECT must be sent raw');
    return { packet, message: FastConnectCodec.decode(packet.body) };
  }

  /** FastConnectOk (raw), then the stored cipher. */
  acceptFastConnect(packet: Packet, sessionKey: Buffer, iv: Buffer, heartbeat = 180_000): void {
    this.sendPacket({
      cmd: Command.FAST_CONNECT,
      flags: 0,
      sessionId: packet.sessionId,
      body: FastConnectOkCodec.encode({ heartbeat }),
    });
    this.useKey(sessionKey, iv);
  }

  useKey(sessionKey: Buffer, iv: Buffer): void {
    this.sessionKey = sessionKey;
    this.iv = iv;
    this.cipher = new AesCipher(sessionKey, iv);
  }

  sendPacket(p: Packet): void {
    this.socket.write(encodePacket(p));
  }

  /** Sends a body through the server's pipeline: optional compression, then the session cipher. */
  sendEncrypted(cmd: number, sessionId: number, plain: Buffer, flags = 0, compress = false): void {
    let body = plain;
    if (compress) {
      body = deflate(body);
      flags |= Flags.COMPRESS;
    }
    body = this.cipher!.encrypt(body);
    this.sendPacket({ cmd, flags: flags | Flags.CRYPTO, sessionId, body });
  }

  /** OK reply (raw, as MPush's sendRaw). */
  ok(request: Packet, data = ''): void {
    this.sendPacket({
      cmd: Command.OK,
      flags: 0,
      sessionId: request.sessionId,
      body: OkCodec.encode({ cmd: request.cmd, code: 0, data }),
    });
  }

  /** ERROR reply (raw). */
  error(request: Packet, code: number, reason: string): void {
    this.sendPacket({
      cmd: Command.ERROR,
      flags: 0,
      sessionId: request.sessionId,
      body: ErrorCodec.encode({ cmd: request.cmd, code, reason, data: '' }),
    });
  }

  /** The bytes received so far, and forgets them. */
  takeReceived(): Buffer {
    const all = Buffer.concat(this.received);
    this.received.length = 0;
    return all;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A TCP server on port 0 handing each accepted connection to the test as a {@link Peer}. */
export class FakeServer {
  readonly peers: Peer[] = [];
  private taken = 0;
  private readonly listeners = new Set<() => void>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly server: Server,
    readonly port: number,
  ) {
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      this.peers.push(new Peer(socket));
      for (const l of [...this.listeners]) l();
    });
  }

  static async start(): Promise<FakeServer> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return new FakeServer(server, address.port);
  }

  get address(): { host: string; port: number } {
    return { host: '127.0.0.1', port: this.port };
  }

  /** The next connection the server accepted. */
  async nextPeer(timeoutMs = 5000): Promise<Peer> {
    await waitFor(
      () => this.peers.length > this.taken,
      (wake) => {
        this.listeners.add(wake);
        return () => this.listeners.delete(wake);
      },
      'a connection',
      timeoutMs,
    );
    return this.peers[this.taken++]!;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A port nothing listens on (a server opened and closed). */
export async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const address = s.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return address.port;
}

import { createServer, type Server, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { closeServer, listenOn } from '../util/listen.js';
import type { OutboundLimit, OutboundOwner, OutboundWriter } from '../util/outbound-writer.js';
import { streamWriter } from '../util/stream-sink.js';
import type { AdminNodeView } from './admin-view.js';
import { AdminCommands, EOL, parseRequest } from './commands.js';

const LF = 0x0a;
const CR = 0x0d;

/** The machine's first non-loopback IPv4 address, as MPush's banner shows it; else 127.0.0.1. */
function localIp(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Java's `LocalDateTime.toString()`: `2026-12-02T05:21:17.123` (seconds and millis when not zero). */
export function javaLocalDateTime(d: Date): string {
  let s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (d.getSeconds() || d.getMilliseconds()) s += `:${pad(d.getSeconds())}`;
  if (d.getMilliseconds()) s += `.${pad(d.getMilliseconds(), 3)}`;
  return s;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Java's `Date.toString()`: `Wed Dec 02 05:21:17 UTC 2026`. */
export function javaDateString(d: Date): string {
  const zone =
    new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' })
      .formatToParts(d)
      .find((p) => p.type === 'timeZoneName')?.value ?? 'UTC';
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${pad(d.getDate())} ${time} ${zone} ${d.getFullYear()}`;
}

/**
 * One console connection: bytes in, one line at a time, each answered before the next is read
 * (the socket is paused while a command runs, so at most a line and one chunk are ever held).
 * Replies go through THE outbound writer, bounded by admin.maxOutboundBytes.
 */
class ConsoleConnection implements OutboundOwner {
  readonly writer: OutboundWriter;
  private held: Buffer = Buffer.alloc(0);
  private running = false;
  closed = false;

  constructor(
    readonly socket: Socket,
    private readonly server: AdminServer,
  ) {
    const c = server.config;
    this.writer = streamWriter(socket, this, {
      maxBytes: c.maxOutboundBytes,
      drainTimeoutMs: c.idleTimeoutMs,
    });
  }

  receive(chunk: Buffer): void {
    if (this.closed) return;
    this.held = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk]);
    this.socket.pause();
    void this.runLines();
  }

  private async runLines(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const max = this.server.config.maxLineBytes;
    try {
      while (!this.closed) {
        const end = this.held.indexOf(LF);
        const length = end < 0 ? this.held.length : end > 0 && this.held[end - 1] === CR ? end - 1 : end;
        if (length > max) {
          this.server.stats.longLines++;
          return this.bye(`line too long: more than ${max} bytes (admin.maxLineBytes)`);
        }
        if (end < 0) break;
        const line = this.held.toString('utf8', 0, length);
        this.held = this.held.subarray(end + 1);
        await this.answer(line);
      }
    } finally {
      this.running = false;
      if (!this.closed) this.socket.resume();
    }
  }

  private async answer(line: string): Promise<void> {
    const server = this.server;
    server.stats.commands++;
    let reply: Awaited<ReturnType<AdminCommands['run']>>;
    try {
      reply = await server.commands.run(parseRequest(line));
    } catch (err) {
      // A store that failed, say: the operator reads why; the connection stays.
      reply = { text: `error: ${(err as Error).message}` };
    }
    this.write(reply.text + EOL + EOL);
    if (reply.after === 'close') this.close();
    if (reply.after === 'shutdown') {
      this.close();
      server.view.log.warn('shutdown asked on the admin console', { from: this.socket.remoteAddress });
      setImmediate(() => server.view.shutdown());
    }
  }

  write(text: string): void {
    if (!this.closed) this.writer.write(text);
  }

  /** Says why, then closes: the console's own limits. */
  bye(reason: string): void {
    this.write(reason + EOL);
    this.close();
  }

  /** @internal OutboundOwner: a console that does not read its replies. */
  onOutboundLimit(_limit: OutboundLimit): void {
    this.server.stats.slowReaders++;
    this.closed = true;
    this.writer.stop();
    this.socket.destroy();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.held = Buffer.alloc(0);
    this.writer.stop();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }
}

export interface AdminServerOptions {
  node: AdminNodeView;
}

/**
 * MPush's telnet console (its AdminHandler, port 3002): one command per line, `\r\n` or `\n`,
 * tokens split on spaces; every reply followed by an empty line. No login: it binds admin.host
 * (loopback by default). Limits: admin.maxLineBytes, admin.maxConnections, admin.idleTimeoutMs,
 * admin.maxOutboundBytes; each breach closes that connection alone, with a message.
 */
export class AdminServer {
  readonly view: AdminNodeView;
  readonly commands: AdminCommands;
  readonly stats = { connections: 0, refused: 0, commands: 0, longLines: 0, idleClosed: 0, slowReaders: 0 };
  private tcp: Server | undefined;
  private readonly conns = new Set<ConsoleConnection>();

  constructor(opts: AdminServerOptions) {
    this.view = opts.node;
    this.commands = new AdminCommands(opts.node);
  }

  /** Console connections open now. */
  get openConnections(): number {
    return this.conns.size;
  }

  get config() {
    return this.view.config.admin;
  }

  listen(port = this.config.port, host = this.config.host): Promise<number> {
    const server = createServer((s) => this.accept(s));
    this.tcp = server;
    // Node's default backlog: the console takes admin.maxConnections (8) at once.
    return listenOn(server, port, host, 511, (err) =>
      this.view.log.error('admin console error', { err: err.message }),
    ).catch((err: Error) => {
      throw new Error(
        `admin console cannot listen on ${host}:${port}: ${err.message} (admin.port, admin.enabled)`,
      );
    });
  }

  private accept(socket: Socket): void {
    socket.on('error', () => {});
    const conn = new ConsoleConnection(socket, this);
    if (this.conns.size >= this.config.maxConnections) {
      this.stats.refused++;
      return conn.bye(`too many console connections (admin.maxConnections=${this.config.maxConnections})`);
    }
    this.stats.connections++;
    this.conns.add(conn);
    socket.setTimeout(this.config.idleTimeoutMs, () => {
      this.stats.idleClosed++;
      conn.bye(`idle for ${this.config.idleTimeoutMs} ms (admin.idleTimeoutMs), bye`);
    });
    socket.on('data', (chunk: Buffer) => conn.receive(chunk));
    socket.on('close', () => {
      conn.closed = true;
      conn.writer.stop();
      this.conns.delete(conn);
    });
    conn.write(this.banner());
  }

  /** MPush's welcome: where, since when, and the time now. */
  private banner(): string {
    const started = this.view.startedAt();
    const hours = Math.floor((Date.now() - started) / 3_600_000);
    return (
      `Welcome to MPush Console [${localIp()}]!${EOL}` +
      `since ${javaLocalDateTime(new Date(started))} has running ${hours}(h)${EOL}${EOL}` +
      `It is ${javaDateString(new Date())} now.${EOL}${EOL}`
    );
  }

  async close(): Promise<void> {
    const tcp = this.tcp;
    this.tcp = undefined;
    for (const c of this.conns) c.close();
    await closeServer(tcp);
  }
}

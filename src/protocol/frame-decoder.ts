import { ProtocolError } from './errors.js';
import { DEFAULT_MAX_BODY_LENGTH, HEADER_LENGTH, HEARTBEAT_BYTE, type Packet } from './packet.js';

/** What the decoder hands out, in wire order. */
export interface FrameHandler {
  onPacket(packet: Packet): void;
  onHeartbeat(): void;
  /**
   * When present, a frame declaring more than the limit is skipped (its body discarded as it
   * arrives, never buffered) and reported here instead of failing the stream: the gateway
   * answers an oversize push with an ERROR and keeps the connection (mpush-wire §12).
   */
  onOversized?(cmd: number, sessionId: number, length: number): void;
}

export interface FrameDecoderOptions {
  /** Largest body length accepted; a header declaring more fails at once (mpush-wire §1). */
  maxBodyLength?: number;
  /**
   * Hand out every body as a copy, never as a view of the chunk: for a reader whose chunks are one
   * buffer it reuses for the next read (a device socket reading into a lent buffer). A handler may
   * then keep a body past its call; and no kept body pins a read chunk.
   */
  copyBodies?: boolean;
}

enum State {
  /** At a frame boundary, or inside a header: heartbeat bytes are skipped only at a boundary. */
  Header = 0,
  Body = 1,
  Failed = 2,
  /** Discarding the body of an oversized frame. */
  Skip = 3,
}

/**
 * Streaming decoder for the MPush binary protocol: a state machine fed arbitrary chunks.
 *
 * It knows nothing of sockets. A frame that lies wholly inside one chunk is handed out as a
 * view of that chunk (no copy, unless `copyBodies`); bytes are copied when a header or body
 * straddles chunks, so the caller may reuse a chunk once push() returns.
 * The declared length is checked as soon as the header is complete, before any of the body is
 * kept, and a partial body is held as the chunks received so far, so memory follows what the
 * peer actually sent, never what it claimed it would send.
 *
 * After an error the decoder stays failed: the connection must be closed.
 */
export class FrameDecoder {
  private state: State = State.Header;
  private readonly maxBodyLength: number;
  private readonly copyBodies: boolean;
  private readonly handler: FrameHandler;
  /** Bytes of a header that straddles chunks. */
  /** Allocated on first need: most connections never see a header cut between chunks. */
  private header: Buffer | null = null;
  private headerFill = 0;
  /** The header fields of the frame whose body is being collected. */
  private cmd = 0;
  private flags = 0;
  private sessionId = 0;
  private cc = 0;
  private lrc = 0;
  private bodyLength = 0;
  /** Pieces of a body that straddles chunks, and how many bytes they hold. */
  private parts: Buffer[] = [];
  private partsLength = 0;
  /** Body bytes of an oversized frame still to discard. */
  private skipLeft = 0;

  constructor(handler: FrameHandler, options: FrameDecoderOptions = {}) {
    this.handler = handler;
    this.maxBodyLength = options.maxBodyLength ?? DEFAULT_MAX_BODY_LENGTH;
    this.copyBodies = options.copyBodies ?? false;
  }

  /** Bytes held for an incomplete frame (bounded by header size + the limit). */
  get bufferedBytes(): number {
    return this.headerFill + this.partsLength;
  }

  /** True between frames: nothing held, nothing failed (a new decoder would carry on the same). */
  get atBoundary(): boolean {
    return this.state === State.Header && this.headerFill === 0;
  }

  /** True once a bad header was seen; later input is ignored. */
  get failed(): boolean {
    return this.state === State.Failed;
  }

  /**
   * Feeds one chunk. Handler callbacks run synchronously, in order.
   * @throws ProtocolError on a negative or oversized declared length.
   */
  push(chunk: Buffer): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.state === State.Header) {
        if (this.headerFill === 0) {
          // mpush-wire §1: any run of 0xDF at a frame boundary is heartbeats.
          while (pos < end && chunk[pos] === HEARTBEAT_BYTE) {
            pos++;
            this.handler.onHeartbeat();
            if (this.state !== State.Header) return; // the handler reset or failed us
          }
          if (pos === end) return;
          if (end - pos >= HEADER_LENGTH) {
            this.readHeader(chunk, pos);
            pos += HEADER_LENGTH;
            // Fast path: the whole body is in this chunk.
            if ((this.state as State) === State.Body && end - pos >= this.bodyLength) {
              this.emit(this.view(chunk, pos, pos + this.bodyLength));
              pos += this.bodyLength;
            }
            continue;
          }
        }
        const n = Math.min(HEADER_LENGTH - this.headerFill, end - pos);
        if (this.header === null) this.header = Buffer.alloc(HEADER_LENGTH);
        chunk.copy(this.header, this.headerFill, pos, pos + n);
        this.headerFill += n;
        pos += n;
        if (this.headerFill === HEADER_LENGTH) {
          this.headerFill = 0;
          this.readHeader(this.header, 0);
        }
      } else if (this.state === State.Skip) {
        const n = Math.min(this.skipLeft, end - pos);
        this.skipLeft -= n;
        pos += n;
        if (this.skipLeft === 0) this.state = State.Header;
      } else if (this.state === State.Body) {
        const need = this.bodyLength - this.partsLength;
        const n = Math.min(need, end - pos);
        if (this.partsLength === 0 && n === need) {
          this.emit(this.view(chunk, pos, pos + n));
        } else {
          // Copy: the caller may reuse its chunk once push() returns.
          this.parts.push(Buffer.from(chunk.subarray(pos, pos + n)));
          this.partsLength += n;
          if (this.partsLength === this.bodyLength) {
            const body =
              this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLength);
            this.parts = [];
            this.partsLength = 0;
            this.emit(body);
          }
        }
        pos += n;
      } else {
        return;
      }
    }
  }

  /** Drops any partial frame and failure; the next byte starts a new frame. */
  reset(): void {
    this.state = State.Header;
    this.headerFill = 0;
    this.parts = [];
    this.partsLength = 0;
  }

  /** A whole body found in one chunk: a view of it, or a copy (`copyBodies`). */
  private view(chunk: Buffer, start: number, end: number): Buffer {
    const v = chunk.subarray(start, end);
    return this.copyBodies ? Buffer.from(v) : v;
  }

  private readHeader(buf: Buffer, at: number): void {
    const length = buf.readInt32BE(at);
    if (length < 0) {
      this.fail();
      throw new ProtocolError('MPUSH_ERR_NEGATIVE_LENGTH', `negative body length ${length}`);
    }
    if (length > this.maxBodyLength) {
      if (this.handler.onOversized) {
        this.skipLeft = length;
        this.state = length > 0 ? State.Skip : State.Header;
        this.handler.onOversized(buf[at + 4]!, buf.readInt32BE(at + 8), length);
        return;
      }
      this.fail();
      throw new ProtocolError(
        'MPUSH_ERR_PACKET_TOO_LARGE',
        `body length ${length} exceeds the limit of ${this.maxBodyLength} bytes`,
      );
    }
    this.bodyLength = length;
    this.cmd = buf[at + 4]!;
    this.cc = buf.readInt16BE(at + 5);
    this.flags = buf[at + 7]!;
    this.sessionId = buf.readInt32BE(at + 8);
    this.lrc = buf[at + 12]!;
    if (length === 0) {
      this.emit(EMPTY);
    } else {
      this.state = State.Body;
    }
  }

  private emit(body: Buffer): void {
    this.state = State.Header;
    this.handler.onPacket({
      cmd: this.cmd,
      flags: this.flags,
      sessionId: this.sessionId,
      body,
      cc: this.cc,
      lrc: this.lrc,
    });
  }

  private fail(): void {
    this.state = State.Failed;
    this.headerFill = 0;
    this.parts = [];
    this.partsLength = 0;
  }
}

const EMPTY = Buffer.alloc(0);

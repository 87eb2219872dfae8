import type { Writable } from 'node:stream';
import {
  type OutboundLimits,
  type OutboundOwner,
  type OutboundSink,
  OutboundWriter,
} from './outbound-writer.js';

const kWriter = Symbol('mpush.outboundWriter');
type TaggedStream = Writable & { [kWriter]?: OutboundWriter };

// Module-level listener: the stream finds its writer through a symbol, no closure per stream.
function onDrain(this: TaggedStream): void {
  this[kWriter]?.drained();
}

/** A Node writable stream (a TCP or TLS socket) as an {@link OutboundSink}. */
export class StreamSink implements OutboundSink {
  constructor(private readonly stream: Writable) {}

  get writable(): boolean {
    return !this.stream.destroyed && this.stream.writable;
  }

  get bufferedBytes(): number {
    return this.stream.writableLength;
  }

  write(data: Buffer | string): boolean {
    return this.stream.write(data);
  }

  cork(): void {
    this.stream.cork();
  }

  uncork(): void {
    this.stream.uncork();
  }
}

/**
 * The {@link OutboundWriter} of one stream (gateway, push-client and telnet connections: many small
 * packets, batched per event-loop turn), with the stream's drain event wired to it. Call
 * {@link OutboundWriter.stop} when the stream closes, so a pending drain timer is cleared.
 */
export function streamWriter(stream: Writable, owner: OutboundOwner, limits: OutboundLimits): OutboundWriter {
  const writer = new OutboundWriter(new StreamSink(stream), owner, limits, undefined, 'loop');
  (stream as TaggedStream)[kWriter] = writer;
  stream.on('drain', onDrain);
  return writer;
}

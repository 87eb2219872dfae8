import { EventEmitter } from 'node:events';
import { z } from 'zod';

/** A message on the bus: plain JSON data. */
export type BusMessage = z.infer<typeof busMessageSchema>;

/** A message, also as read back from a shared bus: a JSON object (what else is there is not ours). */
export const busMessageSchema = z.record(z.string(), z.unknown());

/**
 * Cross-node events: kicks addressed to one node, online/offline notices for all. Memory (one
 * process, possibly several in-process nodes sharing it) and Redis pub/sub implementations.
 */
export interface ClusterBus {
  publish(topic: string, message: BusMessage): Promise<void>;
  subscribe(topic: string, handler: (message: BusMessage) => void): Promise<void>;
  /**
   * A channel named exactly as given, outside this project's key prefix: MPush's own (its kick
   * channel `/mpush/kick/<host:port>`), for clusters where MPush-Java nodes run beside ours.
   */
  publishForeign(channel: string, message: BusMessage): Promise<void>;
  subscribeForeign(channel: string, handler: (message: BusMessage) => void): Promise<void>;
  close(): Promise<void>;
}

/** Topic a node listens on for kicks of its devices. */
export function kickTopic(nodeId: string): string {
  return `kick:${nodeId}`;
}

/** Delivers synchronously-queued (next tick) to subscribers in this process. */
export class MemoryClusterBus implements ClusterBus {
  private readonly emitter = new EventEmitter();
  private readonly mine: Array<[string, (m: BusMessage) => void]> = [];

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  async publish(topic: string, message: BusMessage): Promise<void> {
    // Copy, as a network bus would: no subscriber shares the publisher's object.
    const copy = JSON.parse(JSON.stringify(message)) as BusMessage;
    process.nextTick(() => this.emitter.emit(topic, copy));
  }

  async subscribe(topic: string, handler: (message: BusMessage) => void): Promise<void> {
    this.emitter.on(topic, handler);
    this.mine.push([topic, handler]);
  }

  publishForeign(channel: string, message: BusMessage): Promise<void> {
    return this.publish(`foreign:${channel}`, message);
  }

  subscribeForeign(channel: string, handler: (message: BusMessage) => void): Promise<void> {
    return this.subscribe(`foreign:${channel}`, handler);
  }

  async close(): Promise<void> {
    for (const [topic, handler] of this.mine) this.emitter.off(topic, handler);
    this.mine.length = 0;
  }
}

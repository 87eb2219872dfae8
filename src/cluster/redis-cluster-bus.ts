import { type Cluster, Redis } from 'ioredis';
import { type BusMessage, busMessageSchema, type ClusterBus } from './cluster-bus.js';
import { readJson } from './redis-json.js';

/**
 * The cluster bus on Redis pub/sub: one extra connection for subscriptions (a subscribed
 * connection can issue no other command). Channel = prefix + topic; messages are JSON.
 * ioredis re-subscribes after a reconnect.
 */
export class RedisClusterBus implements ClusterBus {
  private readonly sub: Redis | Cluster;
  private readonly handlers = new Map<string, Array<(m: BusMessage) => void>>();

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix = 'mp:',
  ) {
    // No CLIENT SETINFO on the subscriber (single server, Sentinel): ioredis sends it before its
    // ready check, asynchronously, and a SUBSCRIBE issued in that window is written at once (it is
    // allowed while connecting), so the ready check's INFO then fails "Connection in subscriber mode"
    // and the connection is dropped. A Cluster subscribes through its own subscriber connection.
    this.sub = redis instanceof Redis ? redis.duplicate({ disableClientInfo: true }) : redis.duplicate();
    this.sub.on('error', () => {});
    this.sub.on('message', (channel: string, text: string) => {
      const list = this.handlers.get(channel);
      if (!list) return;
      const msg = readJson(busMessageSchema, text);
      if (msg === undefined) return; // not ours
      for (const h of list) h(msg);
    });
  }

  publish(topic: string, message: BusMessage): Promise<void> {
    return this.publishForeign(`${this.prefix}bus:${topic}`, message);
  }

  subscribe(topic: string, handler: (message: BusMessage) => void): Promise<void> {
    return this.subscribeForeign(`${this.prefix}bus:${topic}`, handler);
  }

  async publishForeign(channel: string, message: BusMessage): Promise<void> {
    await this.redis.publish(channel, JSON.stringify(message));
  }

  async subscribeForeign(channel: string, handler: (message: BusMessage) => void): Promise<void> {
    const list = this.handlers.get(channel);
    if (list) {
      list.push(handler);
      return;
    }
    this.handlers.set(channel, [handler]);
    await this.sub.subscribe(channel);
  }

  async close(): Promise<void> {
    this.handlers.clear();
    this.sub.disconnect();
  }
}

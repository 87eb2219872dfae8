import assert from 'node:assert/strict';
import { MemoryRouteStore, type Route } from '../../../src/cluster/route-store.js';
import type { Config, DeepPartial } from '../../../src/config/index.js';
import { silentLogger } from '../../../src/log.js';
import { ClientType, type GatewayPushMessage } from '../../../src/protocol/index.js';
import { PushCenter } from '../../../src/push/push-center.js';
import { type MemoryDevice, type MemoryServer, memoryServer } from '../../helpers/memory-server.js';

/** A route store whose lookups fail, as a Redis outage makes them. */
export class FailingRouteStore extends MemoryRouteStore {
  override lookup(): Promise<Map<number, Route>> {
    return Promise.reject(new Error('store down'));
  }
}

export interface PushRig {
  s: MemoryServer;
  push: PushCenter;
  routes: MemoryRouteStore;
  /** A handshaken device bound as `userId` (android: MOBILE). */
  bound(userId: string, tags?: string): MemoryDevice;
  close(): Promise<void>;
}

/** A push center over a memory connection server: devices are memory transports. */
export function pushRig(
  overrides: DeepPartial<Config> = {},
  opts: { routes?: MemoryRouteStore; isRouteLive?: (r: Route) => boolean } = {},
): PushRig {
  const s = memoryServer({ ...overrides, push: { ackTickMs: 2, ...overrides.push } });
  const routes = opts.routes ?? new MemoryRouteStore();
  const push = new PushCenter({
    config: s.config,
    log: silentLogger,
    server: s.server.context,
    routes,
    nodeId: 'node-a',
    isRouteLive: opts.isRouteLive ?? (() => true),
  });
  return {
    s,
    push,
    routes,
    bound(userId, tags = '') {
      const d = s.connect();
      d.handshake(s.publicKey);
      assert.ok(d.bind(userId, '', tags).ok);
      return d;
    },
    async close() {
      push.close();
      await routes.close();
      await s.close();
    },
  };
}

export function pushMessage(m: Partial<GatewayPushMessage> = {}): GatewayPushMessage {
  return {
    userId: '',
    clientType: ClientType.MOBILE,
    timeout: 0,
    content: Buffer.from('hello'),
    taskId: '',
    tags: null,
    condition: '',
    ...m,
  };
}

import { z } from 'zod';
import {
  eventKey,
  INBOX_CLIENT_TYPES,
  type InboxEntry,
  type InboxStore,
  type PendingMessages,
  parseEventKey,
  type Receipt,
  type ReceiptEvent,
  receiptOf,
  type StoreOutcome,
} from './inbox-store.js';
import type { RedisClient } from './redis-connection.js';
import { readJson } from './redis-json.js';
import type { RedisStoreOptions } from './redis-route-store.js';
import { RedisScript } from './redis-script.js';

// An inbox is two keys in one hash slot ({userId}): a sorted set of messageIds scored by their
// store order (the last score + 1), and a hash messageId → `<expiresAt>\n<entry JSON>` plus
// `<messageId>|d` → `,<type>,<type>,` (the types that have it). A receipt is a hash of its own.
//
// Every operation is a step of one script, BATCH: the operations a node issues in one turn of the
// event loop (the stores and receipts of a burst of pushes, the settles of a burst of acks) run
// as one EVALSHA, one round trip for all of them; each is atomic, in call order, and one that
// fails (a key of the wrong type) fails alone. On a Redis Cluster the keys of different users
// live on different servers, so there each operation is a BATCH of one (its keys share a slot).
//
// ARGV[1]: every operation as one JSON array (cjson decodes it): per operation [step, args...];
// a step's key count is fixed. KEYS: every operation's keys, in order. One reply per operation.
// One string, not a dozen arguments per message: ioredis builds and writes each argument apart.
const BATCH = new RedisScript(`
local steps, nkeys = {}, {store = 2, pending = 2, settle = 2, record = 1}

-- KEYS: order, entries. op: messageId, value, ttlMs, maxMessages. {1, dropped id, ...} or {0}.
steps.store = function(k, op)
  local order, entries, id = KEYS[k], KEYS[k + 1], op[2]
  if redis.call('HSETNX', entries, id, op[3]) == 0 then return {0} end
  local last = redis.call('ZRANGE', order, -1, -1, 'WITHSCORES')
  redis.call('ZADD', order, (tonumber(last[2]) or 0) + 1, id)
  local out = {1}
  local over = redis.call('ZCARD', order) - op[5]
  if over > 0 then
    local gone = redis.call('ZPOPMIN', order, over)
    for i = 1, #gone, 2 do
      redis.call('HDEL', entries, gone[i], gone[i] .. '|d')
      out[#out + 1] = gone[i]
    end
  end
  local ttl = op[4]
  if redis.call('PTTL', order) < ttl then redis.call('PEXPIRE', order, ttl) end
  if redis.call('PTTL', entries) < ttl then redis.call('PEXPIRE', entries, ttl) end
  return out
end

-- KEYS: order, entries. op: client type, now. {{id, value, ...}, {expired id, ...}}.
steps.pending = function(k, op)
  local order, entries = KEYS[k], KEYS[k + 1]
  local out, expired = {}, {}
  local ids = redis.call('ZRANGE', order, 0, -1)
  if #ids == 0 then return {out, expired} end
  local all, h = redis.call('HGETALL', entries), {}
  for i = 1, #all, 2 do h[all[i]] = all[i + 1] end
  local mark, now = ',' .. op[2] .. ',', op[3]
  for _, id in ipairs(ids) do
    local v = h[id]
    if not v then
      redis.call('ZREM', order, id)
    elseif (tonumber(string.match(v, '^(%d+)')) or 0) <= now then
      redis.call('ZREM', order, id)
      redis.call('HDEL', entries, id, id .. '|d')
      expired[#expired + 1] = id
    else
      local d = h[id .. '|d']
      if not d or not string.find(d, mark, 1, true) then
        out[#out + 1] = id
        out[#out + 1] = v
      end
    end
  end
  return {out, expired}
end

-- KEYS: order, entries. op: messageId, client type, ttlMs, every inbox type (",1,2,3,").
-- 1 when every type has it (it left the inbox), else 0.
steps.settle = function(k, op)
  local order, entries, id = KEYS[k], KEYS[k + 1], op[2]
  local f = id .. '|d'
  local d = redis.call('HGET', entries, f) or ','
  if not string.find(d, ',' .. op[3] .. ',', 1, true) then d = d .. op[3] .. ',' end
  for t in string.gmatch(op[5], '[^,]+') do
    if not string.find(d, ',' .. t .. ',', 1, true) then
      redis.call('HSET', entries, f, d)
      if redis.call('PTTL', entries) < 0 then redis.call('PEXPIRE', entries, op[4]) end
      return 0
    end
  end
  redis.call('HDEL', entries, id, f)
  redis.call('ZREM', order, id)
  return 1
end

-- KEYS: receipt. op: ttlMs, field, ms, field, ms, ...
steps.record = function(k, op)
  redis.call('HSET', KEYS[k], unpack(op, 3))
  redis.call('PEXPIRE', KEYS[k], op[2])
  return 1
end

local out, k = {}, 1
for i, op in ipairs(cjson.decode(ARGV[1])) do
  local ok, res = pcall(steps[op[1]], k, op)
  if ok then
    out[i] = res
  else
    out[i] = redis.error_reply(type(res) == 'table' and res.err or tostring(res))
  end
  k = k + nkeys[op[1]]
end
return out
`);

type Step = 'store' | 'pending' | 'settle' | 'record';

/** An operation waiting for the next BATCH. */
interface Op {
  keys: string[];
  /** [step, args...]: the operation's element of the BATCH's JSON. */
  args: [Step, ...Array<string | number>];
  /** What the caller gets from the reply (unset: the reply); here, not a `.then` per call. */
  map: ((reply: unknown) => unknown) | undefined;
  resolve(reply: unknown): void;
  reject(err: Error): void;
}

/** The store step's reply: `{1, dropped id, ...}` or `{0}`. */
function storeOutcome(reply: unknown): StoreOutcome {
  const out = Array.isArray(reply) ? (reply as [number, ...string[]]) : [0];
  return { added: out[0] === 1, dropped: out.length > 1 ? (out.slice(1) as string[]) : [] };
}

/** Every inbox client type, as the settle step reads them. */
const ALL_TYPES = `,${INBOX_CLIENT_TYPES.join(',')},`;

const entrySchema = z.object({
  t: z.number(),
  f: z.int(),
  o: z.int(),
  c: z.string(),
});

/**
 * `<expiresAt>\n{"t":storedAt,"f":ackFlags,"o":timeoutMs,"c":"<base64 content>"}`: the JSON
 * JSON.stringify writes for it (numbers print alike, base64 needs no escape), without the
 * object and the walk over it, once per stored message.
 */
function encodeEntry(e: InboxEntry): string {
  const c = e.content.toString('base64');
  return `${e.expiresAt}\n{"t":${e.storedAt},"f":${e.ackFlags},"o":${e.timeoutMs},"c":"${c}"}`;
}

function decodeEntry(messageId: string, value: string): InboxEntry | undefined {
  const nl = value.indexOf('\n');
  const expiresAt = Number(value.slice(0, nl));
  const v = nl > 0 ? readJson(entrySchema, value.slice(nl + 1)) : undefined;
  if (!v || !Number.isFinite(expiresAt)) return undefined;
  return {
    messageId,
    content: Buffer.from(v.c, 'base64'),
    ackFlags: v.f,
    timeoutMs: v.o,
    storedAt: v.t,
    expiresAt,
  };
}

/**
 * The operations as JSON for cjson, which refuses an escaped lone surrogate (JSON.stringify
 * writes one as a `\udxxx` escape): those go as U+FFFD, as ioredis writes a lone one in a string.
 */
function batchJson(ops: unknown[]): string {
  const json = JSON.stringify(ops);
  if (!json.includes('\\ud')) return json;
  return JSON.stringify(ops, (_, v: unknown) =>
    typeof v === 'string' ? v.replace(/\p{Cs}/gu, '\ufffd') : v,
  );
}

/** Operations one BATCH takes at most: bounds how long one script holds Redis. */
const MAX_BATCH = 256;

/**
 * The inbox and receipts in Redis, in MPush's key style under the configured prefix:
 * `<prefix>inbox:{<userId>}` (order) and `<prefix>inbox:{<userId>}:m` (entries and delivery
 * marks), both expiring with their newest message; receipts in the hash `<prefix>msg:<messageId>`,
 * field = `[userId, clientType|null, state]`, value = ms, expiring `ttlMs` after the last event.
 *
 * Redis requests: store, pending, settle and record are queued and sent once per turn of the
 * event loop, up to {@link MAX_BATCH} of them in one EVALSHA (a Cluster: one EVALSHA each);
 * receipt = 1 HGETALL.
 */
export class RedisInboxStore implements InboxStore {
  private queue: Op[] = [];
  private readonly batchSize: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix = 'mp:',
    private readonly opts: RedisStoreOptions & { maxBatch?: number } = {},
  ) {
    this.batchSize = redis.isCluster ? 1 : (opts.maxBatch ?? MAX_BATCH);
  }

  /** The two keys of a user's inbox (one hash slot). */
  inboxKeys(userId: string): [string, string] {
    const base = `${this.prefix}inbox:{${userId}}`;
    return [base, `${base}:m`];
  }

  receiptKey(messageId: string): string {
    return `${this.prefix}msg:${messageId}`;
  }

  /** Queues `args` ([step, args...]) for the next BATCH. */
  private run(keys: string[], args: Op['args'], map?: Op['map']): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.queue.length === 0) setImmediate(this.flush);
      this.queue.push({ keys, args, map, resolve, reject });
    });
  }

  private readonly flush = (): void => {
    const ops = this.queue;
    this.queue = [];
    for (let i = 0; i < ops.length; i += this.batchSize) this.send(ops.slice(i, i + this.batchSize));
  };

  private send(ops: Op[]): void {
    const keys: string[] = [];
    const all: Op['args'][] = new Array(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      for (const k of op.keys) keys.push(k);
      all[i] = op.args;
    }
    BATCH.run(this.redis, keys, [batchJson(all)]).then(
      (replies) => {
        for (let i = 0; i < ops.length; i++) {
          const op = ops[i]!;
          const r = (replies as unknown[])[i];
          if (r instanceof Error) op.reject(r);
          else op.resolve(op.map ? op.map(r) : r);
        }
      },
      (err: Error) => {
        for (const op of ops) op.reject(err);
      },
    );
  }

  store(userId: string, entry: InboxEntry, maxMessages: number): Promise<StoreOutcome> {
    const ttlMs = Math.max(1, entry.expiresAt - Date.now());
    const args: Op['args'] = ['store', entry.messageId, encodeEntry(entry), ttlMs, maxMessages];
    return this.run(this.inboxKeys(userId), args, storeOutcome) as Promise<StoreOutcome>;
  }

  async pending(userId: string, clientType: number, now: number): Promise<PendingMessages> {
    const [flat, expired] = (await this.run(this.inboxKeys(userId), ['pending', clientType, now])) as [
      string[],
      string[],
    ];
    const out: InboxEntry[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const e = decodeEntry(flat[i]!, flat[i + 1]!);
      if (e) out.push(e);
    }
    return { entries: out, expired };
  }

  async settle(userId: string, clientType: number, messageId: string, ttlMs: number): Promise<void> {
    await this.run(this.inboxKeys(userId), ['settle', messageId, clientType, ttlMs, ALL_TYPES]);
  }

  record(messageId: string, events: readonly ReceiptEvent[], ttlMs: number): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    const args: Op['args'] = ['record', ttlMs];
    for (const e of events) args.push(eventKey(e), e.at);
    // The reply (1) is no one's business: the promise is only waited for.
    return this.run([this.receiptKey(messageId)], args) as Promise<void>;
  }

  async receipt(messageId: string): Promise<Receipt | undefined> {
    const all = await this.redis.hgetall(this.receiptKey(messageId));
    const events: ReceiptEvent[] = [];
    for (const [k, v] of Object.entries(all)) {
      const e = parseEventKey(k, Number(v));
      if (e) events.push(e);
    }
    return receiptOf(messageId, events);
  }

  /** Sends what is queued, leaves the inboxes in Redis (they outlive this process); runs `onClose`. */
  async close(): Promise<void> {
    this.flush();
    await this.opts.onClose?.();
  }
}

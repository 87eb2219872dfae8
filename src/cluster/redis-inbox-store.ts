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
// ARGV[1]: the number of operations; then, per operation, its step, key count, argument count
// and arguments. KEYS: every operation's keys, in order. Returns one reply per operation.
const BATCH = new RedisScript(`
local steps = {}

-- KEYS: order, entries. ARGV: messageId, value, ttlMs, maxMessages. {1, dropped id, ...} or {0}.
steps.store = function(k, a)
  local order, entries, id = KEYS[k], KEYS[k + 1], ARGV[a]
  if redis.call('HSETNX', entries, id, ARGV[a + 1]) == 0 then return {0} end
  local last = redis.call('ZRANGE', order, -1, -1, 'WITHSCORES')
  redis.call('ZADD', order, (tonumber(last[2]) or 0) + 1, id)
  local out = {1}
  local over = redis.call('ZCARD', order) - tonumber(ARGV[a + 3])
  if over > 0 then
    local gone = redis.call('ZPOPMIN', order, over)
    for i = 1, #gone, 2 do
      redis.call('HDEL', entries, gone[i], gone[i] .. '|d')
      out[#out + 1] = gone[i]
    end
  end
  local ttl = tonumber(ARGV[a + 2])
  if redis.call('PTTL', order) < ttl then redis.call('PEXPIRE', order, ttl) end
  if redis.call('PTTL', entries) < ttl then redis.call('PEXPIRE', entries, ttl) end
  return out
end

-- KEYS: order, entries. ARGV: client type, now. {{id, value, ...}, {expired id, ...}}.
steps.pending = function(k, a)
  local order, entries = KEYS[k], KEYS[k + 1]
  local out, expired = {}, {}
  local ids = redis.call('ZRANGE', order, 0, -1)
  if #ids == 0 then return {out, expired} end
  local all, h = redis.call('HGETALL', entries), {}
  for i = 1, #all, 2 do h[all[i]] = all[i + 1] end
  local mark, now = ',' .. ARGV[a] .. ',', tonumber(ARGV[a + 1])
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

-- KEYS: order, entries. ARGV: messageId, client type, ttlMs, every inbox type (",1,2,3,").
-- 1 when every type has it (it left the inbox), else 0.
steps.settle = function(k, a)
  local order, entries, id = KEYS[k], KEYS[k + 1], ARGV[a]
  local f = id .. '|d'
  local d = redis.call('HGET', entries, f) or ','
  if not string.find(d, ',' .. ARGV[a + 1] .. ',', 1, true) then d = d .. ARGV[a + 1] .. ',' end
  for t in string.gmatch(ARGV[a + 3], '[^,]+') do
    if not string.find(d, ',' .. t .. ',', 1, true) then
      redis.call('HSET', entries, f, d)
      if redis.call('PTTL', entries) < 0 then redis.call('PEXPIRE', entries, ARGV[a + 2]) end
      return 0
    end
  end
  redis.call('HDEL', entries, id, f)
  redis.call('ZREM', order, id)
  return 1
end

-- KEYS: receipt. ARGV: ttlMs, field, ms, field, ms, ...
steps.record = function(k, a, n)
  redis.call('HSET', KEYS[k], unpack(ARGV, a + 1, a + n - 1))
  redis.call('PEXPIRE', KEYS[k], ARGV[a])
  return 1
end

local out = {}
local k, a = 1, 2
for i = 1, tonumber(ARGV[1]) do
  local step, nk, na = steps[ARGV[a]], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local ok, res = pcall(step, k, a + 3, na)
  if ok then
    out[i] = res
  else
    out[i] = redis.error_reply(type(res) == 'table' and res.err or tostring(res))
  end
  k = k + nk
  a = a + 3 + na
end
return out
`);

type Step = 'store' | 'pending' | 'settle' | 'record';

/** An operation waiting for the next BATCH. */
interface Op {
  step: Step;
  keys: string[];
  args: Array<string | number>;
  resolve(reply: unknown): void;
  reject(err: Error): void;
}

/** Every inbox client type, as the settle step reads them. */
const ALL_TYPES = `,${INBOX_CLIENT_TYPES.join(',')},`;

const entrySchema = z.object({
  t: z.number(),
  f: z.int(),
  o: z.int(),
  c: z.string(),
});

function encodeEntry(e: InboxEntry): string {
  const json = JSON.stringify({
    t: e.storedAt,
    f: e.ackFlags,
    o: e.timeoutMs,
    c: e.content.toString('base64'),
  });
  return `${e.expiresAt}\n${json}`;
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

  private run(step: Step, keys: string[], args: Array<string | number>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.queue.length === 0) setImmediate(this.flush);
      this.queue.push({ step, keys, args, resolve, reject });
    });
  }

  private readonly flush = (): void => {
    const ops = this.queue;
    this.queue = [];
    for (let i = 0; i < ops.length; i += this.batchSize) this.send(ops.slice(i, i + this.batchSize));
  };

  private send(ops: Op[]): void {
    const keys: string[] = [];
    const args: Array<string | number> = [ops.length];
    for (const op of ops) {
      keys.push(...op.keys);
      args.push(op.step, op.keys.length, op.args.length, ...op.args);
    }
    BATCH.run(this.redis, keys, args).then(
      (replies) => {
        for (let i = 0; i < ops.length; i++) {
          const r = (replies as unknown[])[i];
          if (r instanceof Error) ops[i]!.reject(r);
          else ops[i]!.resolve(r);
        }
      },
      (err: Error) => {
        for (const op of ops) op.reject(err);
      },
    );
  }

  async store(userId: string, entry: InboxEntry, maxMessages: number): Promise<StoreOutcome> {
    const ttlMs = Math.max(1, entry.expiresAt - Date.now());
    const out = (await this.run('store', this.inboxKeys(userId), [
      entry.messageId,
      encodeEntry(entry),
      ttlMs,
      maxMessages,
    ])) as [number, ...string[]];
    return { added: out[0] === 1, dropped: out.slice(1) as string[] };
  }

  async pending(userId: string, clientType: number, now: number): Promise<PendingMessages> {
    const [flat, expired] = (await this.run('pending', this.inboxKeys(userId), [clientType, now])) as [
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
    await this.run('settle', this.inboxKeys(userId), [messageId, clientType, ttlMs, ALL_TYPES]);
  }

  async record(messageId: string, events: readonly ReceiptEvent[], ttlMs: number): Promise<void> {
    if (events.length === 0) return;
    const args: Array<string | number> = [ttlMs];
    for (const e of events) args.push(eventKey(e), e.at);
    await this.run('record', [this.receiptKey(messageId)], args);
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

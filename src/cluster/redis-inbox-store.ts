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

// An inbox is three keys in one hash slot ({userId}): a sorted set of messageIds scored by a
// per-user sequence (the order), a hash messageId → `<expiresAt>\n<entry JSON>` plus
// `<messageId>|d` → `,<type>,<type>,` (the types that have it), and the sequence counter.
// Every operation is one script on those three keys: atomic, one round trip.

// KEYS: order, entries, seq. ARGV: messageId, value, ttlMs, maxMessages.
const STORE = new RedisScript(`
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {0} end
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], seq, ARGV[1])
local out = {1}
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, over - 1)) do
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id, id .. '|d')
    out[#out + 1] = id
  end
end
local ttl = tonumber(ARGV[3])
for i = 1, 3 do
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return out
`);

// KEYS: order, entries. ARGV: client type, now. Returns {{id, value, ...}, {expired id, ...}}.
const PENDING = new RedisScript(`
local out, expired = {}, {}
local mark = ',' .. ARGV[1] .. ','
local now = tonumber(ARGV[2])
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = redis.call('HGET', KEYS[2], id)
  if not v then
    redis.call('ZREM', KEYS[1], id)
  elseif (tonumber(string.match(v, '^(%d+)')) or 0) <= now then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id, id .. '|d')
    expired[#expired + 1] = id
  else
    local d = redis.call('HGET', KEYS[2], id .. '|d')
    if not d or not string.find(d, mark, 1, true) then
      out[#out + 1] = id
      out[#out + 1] = v
    end
  end
end
return {out, expired}
`);

// KEYS: order, entries. ARGV: messageId, client type, ttlMs, every inbox client type...
const SETTLE = new RedisScript(`
local f = ARGV[1] .. '|d'
local d = redis.call('HGET', KEYS[2], f) or ','
if not string.find(d, ',' .. ARGV[2] .. ',', 1, true) then d = d .. ARGV[2] .. ',' end
local all = true
for i = 4, #ARGV do
  if not string.find(d, ',' .. ARGV[i] .. ',', 1, true) then all = false end
end
if all then
  redis.call('HDEL', KEYS[2], ARGV[1], f)
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
redis.call('HSET', KEYS[2], f, d)
if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 0
`);

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

/**
 * The inbox and receipts in Redis, in MPush's key style under the configured prefix:
 * `<prefix>inbox:{<userId>}` (order), `<prefix>inbox:{<userId>}:m` (entries and delivery marks),
 * `<prefix>inbox:{<userId>}:seq`, all expiring with their newest message; receipts in the hash
 * `<prefix>msg:<messageId>`, field = `[userId, clientType|null, state]`, value = ms, expiring
 * `ttlMs` after the last event.
 *
 * Redis commands: store = 1 EVALSHA; pending = 1 EVALSHA (all of a device type's messages);
 * settle = 1 EVALSHA; record = 1 MULTI (HSET + PEXPIRE); receipt = 1 HGETALL.
 */
export class RedisInboxStore implements InboxStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix = 'mp:',
    private readonly opts: RedisStoreOptions = {},
  ) {}

  /** The three keys of a user's inbox (one hash slot). */
  inboxKeys(userId: string): [string, string, string] {
    const base = `${this.prefix}inbox:{${userId}}`;
    return [base, `${base}:m`, `${base}:seq`];
  }

  receiptKey(messageId: string): string {
    return `${this.prefix}msg:${messageId}`;
  }

  async store(userId: string, entry: InboxEntry, maxMessages: number): Promise<StoreOutcome> {
    const ttlMs = Math.max(1, entry.expiresAt - Date.now());
    const out = (await STORE.run(this.redis, this.inboxKeys(userId), [
      entry.messageId,
      encodeEntry(entry),
      ttlMs,
      maxMessages,
    ])) as [number, ...string[]];
    return { added: out[0] === 1, dropped: out.slice(1) as string[] };
  }

  async pending(userId: string, clientType: number, now: number): Promise<PendingMessages> {
    const [order, entries] = this.inboxKeys(userId);
    const [flat, expired] = (await PENDING.run(this.redis, [order, entries], [clientType, now])) as [
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
    const [order, entries] = this.inboxKeys(userId);
    await SETTLE.run(this.redis, [order, entries], [messageId, clientType, ttlMs, ...INBOX_CLIENT_TYPES]);
  }

  async record(messageId: string, events: readonly ReceiptEvent[], ttlMs: number): Promise<void> {
    if (events.length === 0) return;
    const key = this.receiptKey(messageId);
    const fields: string[] = [];
    for (const e of events) fields.push(eventKey(e), String(e.at));
    const res = await this.redis
      .multi()
      .hset(key, ...fields)
      .pexpire(key, ttlMs)
      .exec();
    const failed = res?.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
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

  /** Leaves the inboxes in Redis (they outlive this process); runs `onClose`. */
  async close(): Promise<void> {
    await this.opts.onClose?.();
  }
}

import { z } from 'zod';
import { MAX_MESSAGE_ID_LENGTH } from '../protocol/index.js';
import { ConditionError, compileCondition } from '../push/condition/index.js';
import { validate } from './validate.js';

// A field's message completes a sentence that starts with the field's name ("timeout must be an
// integer"); a message about the whole body is a sentence of its own (see validate.ts).

/** A field that may be left out; JSON `null` counts as left out. */
function optional<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? undefined : v), schema.optional());
}

function text(maxLength: number) {
  return z.string({ error: 'must be a string' }).max(maxLength, { error: `is longer than ${maxLength}` });
}

function strings(maxItems: number) {
  return z
    .array(z.string({ error: 'must be a string' }), { error: 'must be an array of strings' })
    .max(maxItems, { error: `has more than ${maxItems} items` });
}

function integer(min: number, max?: number) {
  const n = z.int({ error: 'must be an integer' }).min(min, { error: `must be ≥ ${min}` });
  return max === undefined ? n : n.max(max, { error: `must be ≤ ${max}` });
}

/** A body must be an object; its unknown fields are errors (a typo must not pass silently). */
function body<S extends z.core.$ZodLooseShape>(shape: S) {
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'invalid_type' ? 'body must be a JSON object' : undefined),
  });
}

const ackModel = z.enum(['NO_ACK', 'AUTO_ACK', 'BIZ_ACK'], {
  error: 'must be one of NO_ACK, AUTO_ACK, BIZ_ACK',
});
/** MPush's PushMsg: delivered as its JSON, so any other field is the sender's to choose. */
const msg = z.looseObject(
  { content: z.string({ error: 'must be a string' }) },
  { error: 'must be an object' },
);
/** Limits of a push body, shared by {@link pushSchema} and its fast path ({@link parsePushBody}). */
const USER_ID_MAX = 256;
const USER_IDS_MAX = 10_000;
const CONTENT_MAX = 4 * 1024 * 1024;
const TIMEOUT_MAX = 600_000;
const TTL_MAX = 366 * 86_400;

const content = text(CONTENT_MAX);
const timeout = integer(1, TIMEOUT_MAX);

/** POST /api/push: the field names of PushContext. */
export const pushSchema = body({
  userId: optional(text(USER_ID_MAX)),
  userIds: optional(strings(USER_IDS_MAX)),
  content: optional(content),
  msg: optional(msg),
  ackModel: optional(ackModel),
  timeout: optional(timeout),
  /** The message's id (default: msg.msgId, else generated); one id for every user of the push. */
  msgId: optional(
    z
      .string({ error: 'must be a string' })
      .min(1, { error: 'must not be empty' })
      .max(MAX_MESSAGE_ID_LENGTH, { error: `is longer than ${MAX_MESSAGE_ID_LENGTH}` }),
  ),
  /** Keep it in the user's inbox when a device is offline or does not ack in time. */
  store: optional(z.boolean({ error: 'must be true or false' })),
  /** Seconds a stored message waits (default inbox.defaultTtlSeconds). */
  ttl: optional(integer(1, TTL_MAX)),
}).check((ctx) => {
  const b = ctx.value;
  if (b.msgId !== undefined && b.msg?.msgId !== undefined && b.msg.msgId !== b.msgId)
    ctx.issues.push({ code: 'custom', message: 'msgId and msg.msgId differ', input: b });
  if (
    b.msg?.msgId !== undefined &&
    (typeof b.msg.msgId !== 'string' || b.msg.msgId === '' || b.msg.msgId.length > MAX_MESSAGE_ID_LENGTH)
  )
    ctx.issues.push({
      code: 'custom',
      message: `msg.msgId must be a string of 1 to ${MAX_MESSAGE_ID_LENGTH} characters`,
      input: b,
    });
  if (b.ttl !== undefined && !b.store)
    ctx.issues.push({ code: 'custom', message: 'ttl needs store: true', input: b });
  if (!b.userId && !b.userIds?.length)
    ctx.issues.push({ code: 'custom', message: 'userId or userIds is required', input: b });
  if (b.content === undefined && !b.msg)
    ctx.issues.push({ code: 'custom', message: 'content or msg is required', input: b });
});

/** POST /api/broadcast. */
export const broadcastSchema = body({
  content: optional(content),
  msg: optional(msg),
  tags: optional(strings(1000)),
  condition: optional(
    text(1024).check((ctx) => {
      try {
        compileCondition(ctx.value);
      } catch (err) {
        if (!(err instanceof ConditionError)) throw err;
        ctx.issues.push({ code: 'custom', message: `is refused: ${err.message}`, input: ctx.value });
      }
    }),
  ),
  ackModel: optional(ackModel),
  timeout: optional(timeout),
  taskId: optional(text(128)),
  broadcastRate: optional(integer(0)),
  broadcastMax: optional(integer(0)),
  /** Answer only once every node has written its share (default: answer at once with the taskId). */
  wait: optional(z.boolean({ error: 'must be true or false' })),
}).check((ctx) => {
  if (ctx.value.content === undefined && !ctx.value.msg)
    ctx.issues.push({ code: 'custom', message: 'content or msg is required', input: ctx.value });
});

/** A valid POST /api/push body. */
export type PushBody = z.infer<typeof pushSchema>;

/** A valid POST /api/broadcast body. */
export type BroadcastBody = z.infer<typeof broadcastSchema>;

const PUSH_FIELDS = new Set(Object.keys(pushSchema.shape));
const ACK_MODELS = new Set<unknown>(ackModel.options);
const isInt = (v: unknown, min: number, max: number) =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
const isText = (v: unknown, max: number) => typeof v === 'string' && v.length <= max;
const isMsgId = (v: unknown) => typeof v === 'string' && v !== '' && v.length <= MAX_MESSAGE_ID_LENGTH;

/**
 * A POST /api/push body as {@link pushSchema} parses it: the common body (every field of the right
 * type and within its limits) is checked here with no schema walk, and comes out as the schema
 * would give it (its fields in the schema's order, `null` as undefined, `msg` with `content`
 * first); anything else, valid or not, goes through the schema, so every refusal names its
 * problems exactly as the schema words them (test/unit/api/push-body.test.ts holds the two to the
 * same answers).
 */
export function parsePushBody(body: unknown): PushBody {
  return fastPushBody(body) ?? validate(pushSchema, body);
}

/** @internal The body as the schema would parse it, or undefined when the schema must decide. */
export function fastPushBody(body: unknown): PushBody | undefined {
  if (typeof body !== 'object' || body === null || Object.getPrototypeOf(body) !== Object.prototype)
    return undefined;
  const b = body as Record<string, unknown>;
  for (const k in b) if (!PUSH_FIELDS.has(k)) return undefined;
  const { userId, userIds, content: c, msg: m, ackModel: a, timeout: t, msgId, store, ttl } = b;
  if (userId != null && !isText(userId, USER_ID_MAX)) return undefined;
  if (userIds != null && !(Array.isArray(userIds) && userIds.length <= USER_IDS_MAX && allStrings(userIds)))
    return undefined;
  if (c != null && !isText(c, CONTENT_MAX)) return undefined;
  if (a != null && !ACK_MODELS.has(a)) return undefined;
  if (t != null && !isInt(t, 1, TIMEOUT_MAX)) return undefined;
  if (msgId != null && !isMsgId(msgId)) return undefined;
  if (store != null && typeof store !== 'boolean') return undefined;
  if (ttl != null && !(isInt(ttl, 1, TTL_MAX) && store === true)) return undefined;
  if (!userId && !(userIds as string[] | null | undefined)?.length) return undefined;
  let msg: Record<string, unknown> | undefined;
  if (m != null) {
    if (typeof m !== 'object' || Object.getPrototypeOf(m) !== Object.prototype) return undefined;
    const given = m as Record<string, unknown>;
    if (typeof given.content !== 'string' || Object.hasOwn(given, '__proto__')) return undefined;
    if (given.msgId !== undefined && !(isMsgId(given.msgId) && (msgId == null || msgId === given.msgId)))
      return undefined;
    msg = { content: given.content, ...given };
  } else if (c == null) return undefined;
  // The schema's order; a field given as null is there, undefined (as the schema leaves it).
  const out: Record<string, unknown> = {};
  for (const k of PUSH_FIELDS) {
    if (!(k in b)) continue;
    out[k] = k === 'msg' ? msg : b[k] === null ? undefined : b[k];
  }
  return out as PushBody;
}

function allStrings(list: unknown[]): boolean {
  for (const v of list) if (typeof v !== 'string') return false;
  return true;
}

/** A query parameter that must be a whole number (query strings are text). */
function queryInteger(min: number, max: number) {
  return z.preprocess(
    (v) => (typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : v),
    integer(min, max),
  );
}

/** GET /api/console/overview's query. */
export const overviewQuerySchema = body({
  /** Most recent disconnects to list (default 50; at most console.recentDisconnects are kept). */
  disconnects: optional(queryInteger(0, 10_000)),
});

/** GET /api/users/:userId/inbox: the path's user id, as POST /api/push takes it. */
export const userPathSchema = body({
  userId: text(256).min(1, { error: 'must not be empty' }),
});

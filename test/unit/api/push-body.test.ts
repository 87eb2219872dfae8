import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fastPushBody, parsePushBody, pushSchema } from '../../../src/api/schemas.js';
import { ValidationError, validate } from '../../../src/api/validate.js';

/** Values of each field: valid ones (null counts as left out) at their limits, then wrong ones. */
const FIELDS: Record<string, { valid: unknown[]; wrong: unknown[] }> = {
  userId: { valid: [null, 'u1', '', 'x'.repeat(256)], wrong: ['x'.repeat(257), 42, ['u1']] },
  userIds: { valid: [null, [], ['a', 'b'], ['']], wrong: [['a', 2], 'a', { 0: 'a' }] },
  content: { valid: [null, '', 'hi'], wrong: [7, { a: 1 }] },
  msg: {
    valid: [
      null,
      { content: 'c' },
      { msgType: 2, content: 'c', z: [1], msgId: 'm1' },
      { msgId: 'm2', content: 'c' },
    ],
    wrong: [
      { content: 'c', msgId: '' },
      { content: 'c', msgId: null },
      { content: 'c', msgId: 'x'.repeat(129) },
      { content: 1 },
      { msgType: 1 },
      ['c'],
      'not an object',
    ],
  },
  ackModel: { valid: [null, 'NO_ACK', 'AUTO_ACK', 'BIZ_ACK'], wrong: ['SOMETIMES', 1] },
  timeout: { valid: [null, 1, 600_000], wrong: [0, 600_001, 1.5, '3000', 2 ** 53, -1] },
  msgId: { valid: [null, 'm1', 'm2', 'x'.repeat(128)], wrong: ['', 'x'.repeat(129), 5] },
  store: { valid: [null, true, false], wrong: ['yes', 1] },
  ttl: { valid: [null, 1, 366 * 86_400], wrong: [366 * 86_400 + 1, 0, 2.5, '60'] },
};

/** A deterministic generator (mulberry32), so a failing body can be found again. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` bodies as JSON.parse gives them, each field left out, valid or (less often) wrong, at random. */
function bodies(n: number): unknown[] {
  const next = random(13);
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)]!;
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const b: Record<string, unknown> = {};
    for (const [k, { valid, wrong }] of Object.entries(FIELDS)) {
      const r = next();
      if (r >= 0.4) b[k] = r < 0.46 ? pick(wrong) : pick(valid);
    }
    if (next() < 0.05) b.ackmodel = 'NO_ACK';
    // Through JSON, as the API reads them (and in a random key order).
    const keys = Object.keys(b).sort(() => next() - 0.5);
    out.push(JSON.parse(JSON.stringify(Object.fromEntries(keys.map((k) => [k, b[k]])))));
  }
  return out;
}

/** Bodies that are not objects, a `__proto__` field, and lists at their limit and past it. */
const OTHER_BODIES: unknown[] = [
  ...['[]', '"hi"', '42', 'null', 'true', '{"userId":"u","content":"x","__proto__":{}}'].map(
    (t) => JSON.parse(t) as unknown,
  ),
  JSON.parse('{"userId":"u","msg":{"content":"x","__proto__":{"a":1}}}'),
  { userIds: Array(10_000).fill('u'), content: 'x' },
  { userIds: Array(10_001).fill('u'), content: 'x' },
  { userId: 'u', content: 'x'.repeat(4 * 1024 * 1024) },
  { userId: 'u', content: 'x'.repeat(4 * 1024 * 1024 + 1) },
];

/** The problems `parse` throws (undefined when it does not throw). */
function problemsOf(parse: () => unknown): string[] | undefined {
  try {
    parse();
  } catch (err) {
    assert.ok(err instanceof ValidationError);
    return err.problems;
  }
  return undefined;
}

describe('POST /api/push body: the fast path and the schema', () => {
  it('the fast path takes the common bodies', () => {
    for (const b of [
      { userId: 'u1', content: 'hi' },
      { userId: 'u1', content: 'hi', ackModel: 'AUTO_ACK', timeout: 5000 },
      { userIds: ['a', 'b'], content: 'hi', ackModel: 'NO_ACK' },
      { userId: 'u1', msg: { msgType: 2, content: 'c' }, msgId: 'm1', store: true, ttl: 60 },
      { userIds: Array(10_000).fill('u'), content: 'x' },
    ])
      assert.notEqual(fastPushBody(b), undefined, JSON.stringify(b));
  });

  it('whatever the fast path takes, the schema takes too, and parses to the same value', () => {
    let taken = 0;
    for (const b of [...bodies(10_000), ...OTHER_BODIES]) {
      const fast = fastPushBody(b);
      if (fast === undefined) continue;
      taken++;
      const schema = pushSchema.safeParse(b);
      assert.ok(schema.success, `the schema refuses ${JSON.stringify(b)}: ${schema.error?.message}`);
      assert.deepEqual(fast, schema.data, JSON.stringify(b));
      assert.deepEqual(Object.keys(fast), Object.keys(schema.data), 'the same fields, in the same order');
      if (fast.msg) assert.deepEqual(Object.keys(fast.msg), Object.keys(schema.data.msg!));
    }
    assert.ok(taken > 500, `the fast path took only ${taken} bodies`);
  });

  it("every body the schema takes, the parse takes; every refusal names the schema's problems", () => {
    for (const b of [...bodies(5000), ...OTHER_BODIES]) {
      let want: unknown;
      try {
        want = validate(pushSchema, b);
      } catch (err) {
        assert.ok(err instanceof ValidationError);
        assert.deepEqual(
          problemsOf(() => parsePushBody(b)),
          err.problems,
          JSON.stringify(b),
        );
        continue;
      }
      assert.deepEqual(parsePushBody(b), want, JSON.stringify(b));
    }
  });
});

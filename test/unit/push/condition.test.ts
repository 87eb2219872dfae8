import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type CompiledCondition,
  ConditionError,
  type ConditionErrorCode,
  type ConditionValue,
  type ConditionVars,
  compileCondition,
} from '../../../src/push/condition/index.js';

const device = (over: Partial<ConditionVars> = {}): ConditionVars => ({
  userId: 'vip_42',
  tags: ['test', 'beta'],
  clientVersion: '1.3.0',
  osName: 'android',
  osVersion: '9',
  ...over,
});

const noTags = (over: Partial<ConditionVars> = {}): ConditionVars => device({ tags: null, ...over });

function assertCode(
  source: string,
  code: ConditionErrorCode,
  limits?: Parameters<typeof compileCondition>[1],
) {
  assert.throws(
    () => compileCondition(source, limits),
    (err: unknown) => {
      assert.ok(err instanceof ConditionError, `expected ConditionError for ${source}, got ${String(err)}`);
      assert.equal(err.code, code, `${source}: ${err.message}`);
      return true;
    },
  );
}

const value = (source: string, vars: ConditionVars = device()): ConditionValue =>
  compileCondition(source).evaluateValue(vars);

const VAR_NAMES = ['userId', 'tags', 'clientVersion', 'osName', 'osVersion'] as const;

/**
 * Test oracle: the same source run by V8 itself. Only ever used on expressions we generate
 * here; the implementation under test never evaluates code.
 */
function native(source: string, vars: ConditionVars): { value: unknown } | { error: unknown } {
  let fn: (...a: unknown[]) => unknown;
  try {
    fn = new Function(...VAR_NAMES, `"use strict"; return (${source});`) as (...a: unknown[]) => unknown;
  } catch (error) {
    return { error };
  }
  try {
    return { value: fn(...VAR_NAMES.map((k) => vars[k])) };
  } catch (error) {
    return { error };
  }
}

function assertSameAsNative(source: string, vars: ConditionVars, maxStringLength?: number): void {
  let compiled: CompiledCondition;
  try {
    compiled = compileCondition(source, { maxStringLength });
  } catch (e) {
    assert.fail(`${source}: does not compile: ${(e as Error).message}`);
  }
  // Ours first: when it stops at a resource limit, V8 would just build the huge value.
  let ours: { value: ConditionValue } | { error: ConditionError };
  try {
    ours = { value: compiled.evaluateValue(vars) };
  } catch (e) {
    assert.ok(e instanceof ConditionError, `${source}: threw ${String(e)}`);
    if (e.code === 'MPUSH_ERR_CONDITION_STEPS' || /longer than/.test(e.message)) return;
    ours = { error: e };
  }
  const expected = native(source, vars);
  if ('error' in expected) {
    assert.ok(expected.error instanceof TypeError, `${source}: native threw ${String(expected.error)}`);
    assert.ok('error' in ours, `${source} should fail like native (${String(expected.error)})`);
    assert.equal(ours.error.code, 'MPUSH_ERR_CONDITION_EVAL');
    assert.equal(compiled.evaluate(vars), false);
    return;
  }
  assert.ok(
    'value' in ours,
    `${source}: failed (${'error' in ours ? ours.error.message : ''}) but V8 gives a value`,
  );
  assert.deepStrictEqual(ours.value, expected.value, `${source} with ${JSON.stringify(vars)}`);
  assert.equal(compiled.evaluate(vars), !!expected.value);
}

describe('compileCondition: MPush examples', () => {
  const examples: Array<[string, ConditionVars, boolean]> = [
    ["tags&&tags.indexOf('test')!=-1", device(), true],
    ["tags&&tags.indexOf('test')!=-1", device({ tags: ['beta'] }), false],
    ["tags&&tags.indexOf('test')!=-1", noTags(), false],
    ["tags&&tags.indexOf('test')!=-1", device({ tags: undefined }), false],
    ["osName=='android' && clientVersion>='1.2'", device(), true],
    ["osName=='android' && clientVersion>='1.2'", device({ clientVersion: '1.1.9' }), false],
    ["osName=='android' && clientVersion>='1.2'", device({ osName: 'ios' }), false],
    ["userId.startsWith('vip_') || (tags && tags.includes('beta'))", device(), true],
    ["userId.startsWith('vip_') || (tags && tags.includes('beta'))", noTags({ userId: 'u1' }), false],
    ["userId.startsWith('vip_') || (tags && tags.includes('beta'))", device({ userId: 'u1' }), true],
    ["userId.startsWith('vip_') || (tags && tags.includes('beta'))", noTags(), true],
  ];
  for (const [source, vars, expected] of examples) {
    it(`${source} with tags=${JSON.stringify(vars.tags)} userId=${vars.userId} → ${expected}`, () => {
      const c = compileCondition(source);
      assert.equal(c.source, source);
      assert.equal(c.evaluate(vars), expected);
      assert.equal(c.errors, 0);
    });
  }

  it('also accepts tags as MPush binds them: the raw comma-separated string', () => {
    const c = compileCondition("tags&&tags.indexOf('test')!=-1");
    assert.equal(c.evaluate(device({ tags: 'vip,test' })), true);
    assert.equal(c.evaluate(device({ tags: 'vip' })), false);
    assert.equal(c.evaluate(device({ tags: '' })), false); // '' is falsy
    assert.equal(
      compileCondition("tags.split(',').indexOf('b') >= 0").evaluate(device({ tags: 'a,b' })),
      true,
    );
    assert.equal(compileCondition("typeof tags == 'string'").evaluate(device({ tags: 'a' })), true);
  });

  it('reports the variables it uses', () => {
    const c = compileCondition("osName=='ios' && tags && tags.length > 0");
    assert.deepEqual([...c.variables].sort(), ['osName', 'tags']);
  });
});

describe('compileCondition: operators and JavaScript semantics', () => {
  it('loose equality follows JavaScript for the primitive types', () => {
    const cases: Array<[string, boolean]> = [
      ['null == undefined', true],
      ['undefined == null', true],
      ["'1' == 1", true],
      ["1 == '1.0'", true],
      ["'' == 0", true],
      ["' ' == 0", true],
      ["'0' == false", true],
      ["'1' == true", true],
      ["'true' == true", false],
      ['null == 0', false],
      ['null == false', false],
      ["undefined == ''", false],
      ['NaN == NaN', false],
      ["'a' == 'a'", true],
      ["'1' === 1", false],
      ['null === undefined', false],
      ["'1' != 1", false],
      ['null != undefined', false],
      ['null !== undefined', true],
      ["['a'] == 'a'", true],
      ["[1,2] == '1,2'", true],
      ['[] == false', true],
      ['[] == []', false],
      ['[null] == 0', true],
      ['tags == tags', true],
    ];
    for (const [source, expected] of cases) assert.equal(value(source), expected, source);
  });

  it('agrees with V8 on ==, !=, ===, !==, <, <=, >, >=, +, -, *, /, % over a value table', () => {
    const literals = [
      '0',
      '1',
      '-1',
      '2.5',
      'NaN',
      'Infinity',
      "''",
      "'0'",
      "'1'",
      "' 1 '",
      "'10'",
      "'9'",
      "'a'",
      "'B'",
      "'true'",
      "'null'",
      'true',
      'false',
      'null',
      'undefined',
      '[]',
      '[1]',
      "['1']",
      '[null]',
      "['a','b']",
    ];
    const ops = ['==', '!=', '===', '!==', '<', '<=', '>', '>=', '+', '-', '*', '/', '%'];
    for (const a of literals) {
      for (const b of literals) {
        for (const op of ops) assertSameAsNative(`${a} ${op} ${b}`, device());
      }
    }
  });

  it('decodes string literal escapes like JavaScript', () => {
    for (const source of [
      String.raw`'\x41'`,
      String.raw`'\u0041b'`,
      String.raw`'\u{1F600}'`,
      String.raw`'a\'b'`,
      `"it's"`,
      String.raw`'\\'`,
      String.raw`'\0'`,
      String.raw`'\q\"'`,
      String.raw`'\n\r\t\b\f\v'`,
      String.raw`"a\"b".length`,
    ]) {
      assertSameAsNative(source, device());
    }
    for (const source of [
      String.raw`'\1'`,
      String.raw`'\01'`,
      String.raw`'\x4'`,
      String.raw`'\u12'`,
      String.raw`'\u{110000}'`,
      String.raw`'\u{41'`,
      '010',
    ]) {
      assertCode(source, 'MPUSH_ERR_CONDITION_SYNTAX');
    }
  });

  it('compares strings lexicographically and string/number numerically', () => {
    assert.equal(value("clientVersion >= '1.2'", device({ clientVersion: '1.10' })), false); // as in JS
    assert.equal(value("'b' > 'abc'"), true);
    assert.equal(value("'10' < '9'"), true);
    assert.equal(value("'10' < 9"), false);
    assert.equal(value('osVersion >= 8', device({ osVersion: '10' })), true);
    assert.equal(value("'x' < 1"), false);
    assert.equal(value("'x' >= 1"), false);
  });

  it('implements unary ! - + and typeof', () => {
    assert.equal(value('!tags'), false);
    assert.equal(value('!tags', noTags()), true);
    assert.equal(value('!!userId'), true);
    assert.equal(value("-'3'"), -3);
    assert.equal(value("+'  4 '"), 4);
    assert.equal(value('+true'), 1);
    assert.equal(value('+[]'), 0);
    assert.ok(Number.isNaN(value("+'x'") as number));
    assert.equal(value('typeof userId'), 'string');
    assert.equal(value('typeof tags'), 'object');
    assert.equal(value('typeof tags', device({ tags: undefined })), 'undefined');
    assert.equal(value('typeof 1'), 'number');
    assert.equal(value('typeof (1 < 2)'), 'boolean');
  });

  it('&& and || short-circuit and return operand values like JavaScript', () => {
    const c = compileCondition("tags && tags.indexOf('x')");
    assert.equal(c.evaluateValue(noTags()), null);
    assert.equal(c.evaluate(noTags()), false);
    assert.equal(c.errors, 0);
    assert.equal(value("userId || 'anon'", device({ userId: '' })), 'anon');
    assert.equal(value("userId || 'anon'"), 'vip_42');
    assert.equal(value('tags && tags.length'), 2);
    assert.equal(value('osName && osName.length', device({ osName: '' })), '');
    assert.equal(value('null || 0 || undefined'), undefined);
    // The right side is not evaluated (it would be an error on null).
    assert.equal(value('true || tags.length', noTags()), true);
    assert.equal(value('false && tags.length', noTags()), false);
  });

  it('supports the conditional operator', () => {
    assert.equal(value("osName == 'ios' ? 1 : 2"), 2);
    assert.equal(value('tags ? tags.length : -1', noTags()), -1);
    assert.equal(value("userId ? osName == 'android' ? 'a' : 'b' : 'c'"), 'a');
  });

  it('supports array literals, .length, numeric indexes', () => {
    assert.deepEqual(value("['android','ios'].indexOf(osName) >= 0"), true);
    assert.deepEqual(value("['a', 1, null]"), ['a', 1, null]);
    assert.equal(value('[1,2,3].length'), 3);
    assert.equal(value('tags[0]'), 'test');
    assert.equal(value('tags[5]'), undefined);
    assert.equal(value('tags[tags.length - 1]'), 'beta');
    assert.equal(value('userId[0]'), 'v');
    assert.equal(value('userId[1.5]'), undefined);
    assert.equal(value('userId[-1]'), undefined);
    assert.equal(value('userId.length'), 6);
    assert.equal(value('(1).length'), undefined);
    assert.equal(value('true[0]'), undefined);
    // Holes behave as in JavaScript.
    assertSameAsNative('[, 1].indexOf(undefined)', device());
    assertSameAsNative('[, 1].includes(undefined)', device());
    assertSameAsNative('[, 1].join()', device());
  });

  it('supports the whitelisted string methods', () => {
    const v = device({ userId: '  Vip_Gold,x  ' });
    const cases = [
      "userId.indexOf('Gold')",
      "userId.indexOf('Gold', 9)",
      "userId.lastIndexOf(' ')",
      "userId.includes('Vip')",
      "userId.trim().startsWith('Vip')",
      "userId.trim().endsWith('x')",
      "userId.startsWith('Vip', 2)",
      'userId.toLowerCase()',
      'userId.toUpperCase()',
      'userId.trim()',
      'userId.substring(2, 5)',
      'userId.substring(5, 2)',
      'userId.substring()',
      'userId.slice(-3)',
      'userId.slice(2, -2)',
      'userId.slice()',
      'userId.charAt(2)',
      'userId.charAt()',
      "userId.split(',')",
      "userId.split(',', 1)",
      "userId.split('')",
      'userId.split()',
      'userId.split(undefined, 0)',
      "userId.split(',').length",
      "userId.trim().split('_')[1].toLowerCase()",
      'userId.indexOf()',
      "userId.indexOf(['Gold'])",
    ];
    for (const source of cases) assertSameAsNative(source, v);
  });

  it('supports the whitelisted array methods', () => {
    const v = device({ tags: ['a', 'b', 'a', ''] });
    const cases = [
      "tags.indexOf('a')",
      "tags.indexOf('a', 1)",
      "tags.lastIndexOf('a')",
      "tags.lastIndexOf('a', 1)",
      "tags.lastIndexOf('a', undefined)",
      "tags.includes('b')",
      "tags.includes('z')",
      'tags.includes(1)',
      'tags.join()',
      "tags.join('|')",
      "tags.join('')",
      'tags.join(undefined)',
      'tags.join(null)',
      "[1, [2, [3, null]], undefined].join(';')",
      'tags.length',
      'tags.slice(1)',
      'tags.slice(-2, -1)',
      'tags.slice()',
    ];
    for (const source of cases) assertSameAsNative(source, v);
  });

  it('calling a method on null/undefined or a wrong type is false for that device, not an exception', () => {
    const c = compileCondition("userId.startsWith('vip')");
    assert.equal(c.evaluate(device({ userId: null })), false);
    assert.equal(c.errors, 1);
    assert.equal(c.lastError?.code, 'MPUSH_ERR_CONDITION_EVAL');
    assert.match(c.lastError?.message ?? '', /null/);
    assert.equal(c.evaluate(device()), true);
    assert.equal(c.errors, 1);

    const t = compileCondition("tags.indexOf('test') >= 0");
    assert.equal(t.evaluate(noTags()), false);
    assert.equal(t.evaluate(device({ tags: undefined })), false);
    assert.equal(t.errors, 2);

    for (const source of [
      'tags.length',
      'tags[0]',
      "(1).indexOf('x')",
      "tags.startsWith('a')",
      'userId.join()',
    ]) {
      const k = compileCondition(source);
      assert.equal(k.evaluate(noTags({ userId: 'u' })), false, source);
      assert.equal(k.errors, 1, source);
      assert.throws(() => k.evaluateValue(noTags({ userId: 'u' })), ConditionError);
    }
  });

  it('uses JavaScript truthiness for the result, or only `true` with strictBoolean (as MPush)', () => {
    assert.equal(compileCondition('userId').evaluate(device()), true);
    assert.equal(compileCondition('tags.indexOf("beta")').evaluate(device()), true); // 1 is truthy
    assert.equal(compileCondition('tags.indexOf("test")').evaluate(device()), false); // 0
    assert.equal(compileCondition('[]').evaluate(device()), true);
    assert.equal(compileCondition("''").evaluate(device()), false);
    assert.equal(compileCondition('userId', { strictBoolean: true }).evaluate(device()), false);
    assert.equal(compileCondition('!!userId', { strictBoolean: true }).evaluate(device()), true);
  });
});

describe('compileCondition: rejected at compile time', () => {
  const forbidden = [
    'this',
    'this.userId',
    'constructor',
    'tags.constructor',
    "userId['constructor']",
    "tags['length']",
    'userId.constructor.constructor("return process")()',
    '__proto__',
    'tags.__proto__',
    'userId.prototype',
    'x = 1',
    'userId = 1',
    'tags += 1',
    '++userId',
    '--userId',
    'new Foo()',
    "eval('1')",
    "Function('x')",
    'process.exit()',
    'globalThis',
    'window',
    'require("fs")',
    'foo',
    "userId == 'a' && bar",
    "userId.replace('a', 'b')",
    'tags.map(x)',
    "tags.push('a')",
    "tags.concat(['a'])",
    'userId.indexOf',
    'userId.length()',
    "userId['indexOf']('a')",
    '(0, userId.indexOf)("a")',
    'tags?.length',
    "tags?.indexOf('a')",
    "userId[tags[0]]['x']",
  ];
  for (const source of forbidden) {
    it(`FORBIDDEN: ${source}`, () => assertCode(source, 'MPUSH_ERR_CONDITION_FORBIDDEN'));
  }

  it('lists the allowed identifiers for an unknown one', () => {
    assert.throws(
      () => compileCondition('userid == 1'),
      /unknown identifier 'userid'; allowed identifiers: userId, tags, clientVersion, osName, osVersion/,
    );
  });

  it('rejects object literals, templates, arrows, regexes and unsupported operators', () => {
    for (const source of [
      '({a: 1})',
      '{a: 1}',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a template literal is the input under test
      '`x${userId}`',
      '(x) => 1',
      'tags.some(t => t == 1)',
      '/a/.test(userId)',
      'userId | 1',
      '1 & 2',
      '1 << 2',
      '~1',
      '2 ** 3',
      'userId ?? 1',
      'function () {}',
      'userId in tags',
    ]) {
      assert.throws(
        () => compileCondition(source),
        (e: unknown) =>
          e instanceof ConditionError &&
          (e.code === 'MPUSH_ERR_CONDITION_SYNTAX' || e.code === 'MPUSH_ERR_CONDITION_FORBIDDEN'),
        source,
      );
    }
  });

  it('TOO_LARGE: a long source or too many nodes', () => {
    assertCode(`userId == '${'a'.repeat(1100)}'`, 'MPUSH_ERR_CONDITION_TOO_LARGE');
    assertCode(Array.from({ length: 200 }, () => '1').join('+'), 'MPUSH_ERR_CONDITION_TOO_LARGE');
    assertCode('userId == 1', 'MPUSH_ERR_CONDITION_TOO_LARGE', { maxLength: 5 });
    assertCode('userId == 1', 'MPUSH_ERR_CONDITION_TOO_LARGE', { maxNodes: 2 });
    // Exactly at the limits is fine.
    assert.ok(compileCondition('userId == 1', { maxLength: 11, maxNodes: 3 }));
    // Deep nesting from a huge source (with raised limits) is TOO_LARGE, not a crash.
    assertCode(`${'('.repeat(200_000)}1${')'.repeat(200_000)}`, 'MPUSH_ERR_CONDITION_TOO_LARGE', {
      maxLength: 1_000_000,
      maxNodes: 1_000_000,
    });
  });

  it('SYNTAX: malformed expressions, with a position', () => {
    for (const source of [
      '',
      '   ',
      'userId ==',
      "'abc",
      '(userId',
      'tags[0',
      'a ? b',
      ')',
      'userId osName',
      '1 2',
    ]) {
      assertCode(source, 'MPUSH_ERR_CONDITION_SYNTAX');
    }
    try {
      compileCondition("userId == 'a' &&");
      assert.fail('should throw');
    } catch (e) {
      assert.ok(e instanceof ConditionError);
      assert.equal(e.position, 16);
      assert.match(e.message, /position 16/);
    }
  });
});

describe('compileCondition: bounded evaluation', () => {
  it('stops runaway string growth at the string limit', () => {
    const big = 'x'.repeat(1000);
    // Squaring: 1000 * 1000 characters would be produced.
    const join = compileCondition("userId.split('').join(userId)");
    assert.equal(join.evaluate(device({ userId: big })), false);
    assert.equal(join.lastError?.code, 'MPUSH_ERR_CONDITION_EVAL');
    assert.match(join.lastError?.message ?? '', /longer than 65536/);

    // Doubling by concatenation.
    let dbl = 'userId';
    for (let i = 0; i < 7; i++) dbl = `(${dbl} + ${dbl.length < 200 ? dbl : 'userId'})`;
    const d = compileCondition(`(${dbl}).length > 0`);
    assert.equal(d.evaluate(device({ userId: 'y'.repeat(20_000) })), false);
    assert.equal(d.errors, 1);

    // Upper-casing can grow a string ('ß' → 'SS').
    const up = compileCondition('userId.toUpperCase()');
    assert.equal(up.evaluate(device({ userId: 'ß'.repeat(40_000) })), false);
    assert.equal(up.errors, 1);
  });

  it('charges for string work and stops at the step budget', () => {
    const chain = `userId${".split('').join('')".repeat(20)}.length > 0`;
    const c = compileCondition(chain);
    assert.equal(c.evaluate(device({ userId: 'z'.repeat(60_000) })), false);
    assert.equal(c.stepOverruns, 1);
    assert.equal(c.lastError?.code, 'MPUSH_ERR_CONDITION_STEPS');
    // The same expression on ordinary input is fine.
    assert.equal(c.evaluate(device({ userId: 'abc' })), true);
    assert.equal(c.errors, 1);

    const tight = compileCondition('1 + 1 + 1 + 1', { maxSteps: 3 });
    assert.equal(tight.evaluate(device()), false);
    assert.equal(tight.stepOverruns, 1);
    assert.throws(
      () => tight.evaluateValue(device()),
      (e: unknown) => e instanceof ConditionError && e.code === 'MPUSH_ERR_CONDITION_STEPS',
    );
  });

  it('evaluates 100k devices with one compiled condition', (t) => {
    const c = compileCondition(
      "osName == 'android' && clientVersion >= '1.2' && tags && tags.indexOf('vip') != -1 || userId.startsWith('admin_')",
    );
    const tagSets = [['vip'], ['beta'], null, ['vip', 'beta']];
    const started = process.hrtime.bigint();
    let matched = 0;
    for (let i = 0; i < 100_000; i++) {
      const vars: ConditionVars = {
        userId: i % 1000 === 0 ? `admin_${i}` : `u${i}`,
        tags: tagSets[i % 4]!,
        clientVersion: i % 2 === 0 ? '1.3' : '1.1',
        osName: i % 3 === 0 ? 'ios' : 'android',
        osVersion: '10',
      };
      if (c.evaluate(vars)) matched++;
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    t.diagnostic(`100k evaluations in ${ms.toFixed(1)} ms`);
    let expected = 0;
    for (let i = 0; i < 100_000; i++) {
      const tags = tagSets[i % 4];
      const byTags = i % 3 !== 0 && i % 2 === 0 && tags !== null && tags!.includes('vip');
      if (byTags || i % 1000 === 0) expected++;
    }
    assert.equal(matched, expected);
    assert.equal(c.errors, 0);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const smallString = fc.string({
  unit: fc.constantFrom('a', 'b', 'V', '1', '0', ',', ' ', '_', '.'),
  maxLength: 6,
});

const varsArb: fc.Arbitrary<ConditionVars> = fc.record({
  userId: fc.oneof(smallString, fc.constant(null), fc.constant(undefined)),
  tags: fc.oneof(
    fc.constant(null),
    fc.constant(undefined),
    fc.array(smallString, { maxLength: 4 }),
    smallString,
  ),
  clientVersion: fc.oneof(smallString, fc.constant(null)),
  osName: fc.oneof(fc.constantFrom('android', 'ios', 'web', ''), fc.constant(undefined)),
  osVersion: fc.oneof(smallString, fc.constant(null)),
});

/** A JS string literal for random text, each character printed raw or as one of the escapes. */
const stringLiteralArb: fc.Arbitrary<string> = fc
  .array(
    fc.tuple(
      fc.constantFrom('a', 'Z', '1', ',', ' ', "'", '"', '\\', '\n', '\t', 'é', '\u2028', '😀'),
      fc.nat(4),
    ),
    { maxLength: 5 },
  )
  .map((chars) => {
    let out = "'";
    for (const [ch, style] of chars) {
      const cp = ch.codePointAt(0)!;
      if (style === 1 && cp < 0x100) out += `\\x${cp.toString(16).padStart(2, '0')}`;
      else if (style === 2 && cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
      else if (style === 3) out += `\\u{${cp.toString(16)}}`;
      else if (ch === "'" || ch === '\\') out += `\\${ch}`;
      else if (ch === '\n') out += '\\n';
      else out += ch;
    }
    return `${out}'`;
  });

/** Random expressions of the supported language, printed with or without parentheses. */
const exprArb: fc.Arbitrary<string> = fc.letrec<{ expr: string; leaf: string }>((tie) => ({
  leaf: fc.oneof(
    fc.constantFrom(...VAR_NAMES),
    smallString.map((s) => `'${s}'`),
    stringLiteralArb,
    fc.constantFrom(
      '0',
      '1',
      '2',
      '10',
      '0.5',
      '1.2',
      'true',
      'false',
      'null',
      'undefined',
      'NaN',
      'Infinity',
    ),
  ),
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf'),
    fc
      .tuple(fc.constantFrom('!', '-', '+', 'typeof '), tie('expr'), fc.boolean())
      .map(([op, e, p]) => (p ? `${op}(${e})` : `${op} ${e}`)),
    fc
      .tuple(
        tie('expr'),
        fc.constantFrom('==', '!=', '===', '!==', '<', '<=', '>', '>=', '+', '-', '*', '/', '%', '&&', '||'),
        tie('expr'),
        fc.boolean(),
      )
      .map(([a, op, b, p]) => (p ? `(${a} ${op} ${b})` : `${a} ${op} ${b}`)),
    fc
      .tuple(tie('expr'), tie('expr'), tie('expr'), fc.boolean())
      .map(([a, b, c, p]) => (p ? `(${a} ? ${b} : ${c})` : `${a} ? ${b} : ${c}`)),
    fc.array(tie('expr'), { maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`),
    tie('expr').map((e) => `(${e}).length`),
    fc.tuple(tie('expr'), fc.nat(3)).map(([e, i]) => `(${e})[${i}]`),
    fc
      .tuple(
        tie('expr'),
        fc.constantFrom(
          'indexOf',
          'lastIndexOf',
          'includes',
          'startsWith',
          'endsWith',
          'toLowerCase',
          'toUpperCase',
          'trim',
          'substring',
          'slice',
          'charAt',
          'split',
          'join',
        ),
        fc.array(tie('expr'), { maxLength: 2 }),
      )
      .map(([o, m, args]) => `(${o}).${m}(${args.join(', ')})`),
  ),
})).expr;

describe('compileCondition: properties', () => {
  it('random text either compiles or throws a ConditionError, never anything else', () => {
    const token = fc.constantFrom(
      'userId',
      'tags',
      'osName',
      'length',
      'indexOf',
      'split',
      'constructor',
      '__proto__',
      'this',
      'new',
      'typeof',
      '(',
      ')',
      '[',
      ']',
      '.',
      '?.',
      ',',
      ';',
      '?',
      ':',
      '=',
      '==',
      '===',
      '!',
      '+',
      '-',
      '*',
      '/',
      '%',
      '&&',
      '||',
      '|',
      '<',
      '>=',
      '=>',
      "'",
      '"',
      '`',
      '{',
      '}',
      '\\',
      '1',
      '0.5',
      'e5',
      ' ',
      'x',
    );
    const text = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.array(token, { maxLength: 40 }).map((a) => a.join('')),
    );
    fc.assert(
      fc.property(text, varsArb, (source, vars) => {
        let c: CompiledCondition;
        try {
          c = compileCondition(source);
        } catch (e) {
          assert.ok(e instanceof ConditionError, `${JSON.stringify(source)} threw ${String(e)}`);
          return;
        }
        assert.equal(typeof c.evaluate(vars), 'boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('generated conditions compile and evaluate() never throws for random devices', () => {
    fc.assert(
      fc.property(exprArb, fc.array(varsArb, { minLength: 1, maxLength: 5 }), (source, devices) => {
        let c: CompiledCondition;
        try {
          c = compileCondition(source);
        } catch (e) {
          // Only the node limit can reject a generated expression.
          assert.ok(e instanceof ConditionError && e.code === 'MPUSH_ERR_CONDITION_TOO_LARGE', String(e));
          return;
        }
        for (const vars of devices) assert.equal(typeof c.evaluate(vars), 'boolean');
      }),
      { numRuns: 1000 },
    );
  });

  it('generated conditions give the same value as JavaScript itself (differential against V8)', () => {
    fc.assert(
      fc.property(exprArb, varsArb, (source, vars) => {
        if (source.length > 1024) return;
        try {
          compileCondition(source);
        } catch (e) {
          if (e instanceof ConditionError && e.code === 'MPUSH_ERR_CONDITION_TOO_LARGE') return;
          throw e;
        }
        assertSameAsNative(source, vars, 4096);
      }),
      { numRuns: 3000 },
    );
  });
});

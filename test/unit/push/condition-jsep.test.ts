import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import jsep from 'jsep';

/** Everything of jsep's configuration an application could notice changing. */
function jsepConfig() {
  return {
    binary: { ...jsep.binary_ops },
    unary: { ...jsep.unary_ops },
    rightAssociative: [...jsep.right_associative],
    literals: { ...jsep.literals },
    identifierChars: [...jsep.additional_identifier_chars],
    plugins: Object.keys(jsep.plugins.registered),
  };
}

// The condition module is imported only once the application's jsep has been recorded: the old
// evaluator reconfigured jsep as it loaded.
const before = jsepConfig();
const { compileCondition, ConditionError } = await import('../../../src/push/condition/index.js');

describe('conditions parse with their own jsep', () => {
  it("loading the evaluator and compiling conditions leaves the application's jsep as it was", () => {
    const c = compileCondition("tags && tags.indexOf('vip') != -1 && typeof userId == 'string'");
    assert.equal(
      c.evaluate({ userId: 'u', tags: 'vip', clientVersion: '', osName: '', osVersion: '' }),
      true,
    );
    assert.throws(() => compileCondition('userId = 1'), ConditionError);

    assert.deepEqual(jsepConfig(), before);
    const or = jsep('a | b') as jsep.BinaryExpression;
    assert.equal(or.type, 'BinaryExpression');
    assert.equal(or.operator, '|');
    assert.equal((jsep('~a') as jsep.UnaryExpression).operator, '~');
    assert.equal(jsep('a ?? b').type, 'BinaryExpression');
    // jsep knows no assignment of its own: the evaluator taught its parser `=` only to refuse it.
    assert.throws(() => jsep('a = b'));
  });

  it('an application reconfiguring its jsep does not change how conditions parse', () => {
    jsep.removeBinaryOp('==');
    jsep.removeBinaryOp('&&');
    jsep.addBinaryOp('|', 20);
    try {
      const c = compileCondition("userId == 'u' && osName != 'ios'");
      assert.equal(
        c.evaluate({ userId: 'u', tags: null, clientVersion: '', osName: 'android', osVersion: '' }),
        true,
      );
      assert.throws(
        () => compileCondition('userId | 1'),
        (e: unknown) => e instanceof ConditionError && e.code === 'MPUSH_ERR_CONDITION_SYNTAX',
      );
    } finally {
      jsep.addBinaryOp('==', 6);
      jsep.addBinaryOp('&&', 2);
      jsep.addBinaryOp('|', 3);
    }
    assert.deepEqual(jsepConfig(), before);
  });
});

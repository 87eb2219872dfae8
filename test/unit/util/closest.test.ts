import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closest } from '../../../src/util/closest.js';

describe('closest: the word probably meant', () => {
  const flags = ['gateway', 'secret', 'content', 'ack', 'timeout', 'tags', 'condition', 'rate', 'max'];

  it('one letter missing, extra, wrong, or two swapped', () => {
    assert.equal(closest('tag', flags), 'tags');
    assert.equal(closest('contents', flags), 'content');
    assert.equal(closest('timeuot', flags), 'timeout');
    assert.equal(closest('sceret', flags), 'secret');
    assert.equal(closest('tgas', flags), 'tags'); // a swap is one edit: a short word allows only one
    assert.equal(closest('Gateway', flags), 'gateway');
  });

  it('no guess for a word near nothing, nor for short words more than one edit away', () => {
    assert.equal(closest('bogus-flag', flags), undefined);
    assert.equal(closest('ttl', flags), undefined);
    assert.equal(closest('x', flags), undefined);
    assert.equal(closest('tag', []), undefined);
  });

  it('long keys allow more edits', () => {
    assert.equal(
      closest('limits.maxConections', ['limits.maxConnections', 'limits.maxPacketSize']),
      'limits.maxConnections',
    );
    assert.equal(closest('limit.maxConection', ['limits.maxConnections']), 'limits.maxConnections');
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { matchesAnyTag, matchesTagsLikeMpush, parseTags } from '../../../src/push/tags.js';

describe('parseTags', () => {
  it('splits on commas, trims, drops empties and dedupes in first-seen order', () => {
    assert.deepEqual(parseTags('vip,beta'), ['vip', 'beta']);
    assert.deepEqual(parseTags(' vip , beta ,, vip,'), ['vip', 'beta']);
    assert.deepEqual(parseTags('a,b,a,c,b'), ['a', 'b', 'c']);
    assert.deepEqual(parseTags('single'), ['single']);
    assert.deepEqual(parseTags('tag with space, x'), ['tag with space', 'x']);
  });

  it('gives [] for empty, blank or missing input', () => {
    assert.deepEqual(parseTags(''), []);
    assert.deepEqual(parseTags(' , ,'), []);
    assert.deepEqual(parseTags(null), []);
    assert.deepEqual(parseTags(undefined), []);
  });

  it('produces trimmed, non-empty, unique tags without commas (property)', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const tags = parseTags(s);
        assert.equal(new Set(tags).size, tags.length);
        for (const t of tags) {
          assert.ok(t.length > 0);
          assert.equal(t, t.trim());
          assert.ok(!t.includes(','));
        }
        // Re-serialising is a fixed point.
        assert.deepEqual(parseTags(tags.join(',')), tags);
      }),
    );
  });
});

describe('matchesAnyTag', () => {
  it('matches when the device has ANY wanted tag', () => {
    const wanted = new Set(['vip', 'test']);
    assert.equal(matchesAnyTag(['vip', 'beta'], wanted), true);
    assert.equal(matchesAnyTag(['beta', 'test'], wanted), true);
    assert.equal(matchesAnyTag(['beta'], wanted), false);
    assert.equal(matchesAnyTag([], wanted), false);
  });

  it('matches whole tags only, and an empty wanted set matches nothing', () => {
    assert.equal(matchesAnyTag(['vip2'], new Set(['vip'])), false);
    assert.equal(matchesAnyTag(['vip'], new Set()), false);
  });

  it('agrees with a set intersection (property)', () => {
    const tag = fc.constantFrom('a', 'b', 'c', 'vip', 'beta');
    fc.assert(
      fc.property(fc.array(tag), fc.array(tag), (device, want) => {
        const wanted = new Set(want);
        assert.equal(
          matchesAnyTag(device, wanted),
          device.some((t) => wanted.has(t)),
        );
      }),
    );
  });
});

describe('matchesTagsLikeMpush (MPush 0.8.1 TagsCondition)', () => {
  it('is a substring test on the raw tags string, any wanted tag', () => {
    assert.equal(matchesTagsLikeMpush('vip,beta', ['vip', 'test']), true);
    assert.equal(matchesTagsLikeMpush('vip2,beta', ['vip']), true); // substring quirk
    assert.equal(matchesTagsLikeMpush('beta', ['vip', 'test']), false);
    assert.equal(matchesTagsLikeMpush('beta', []), false);
    assert.equal(matchesTagsLikeMpush('beta', ['']), true); // "".contains quirk
  });

  it('never matches a device without tags', () => {
    assert.equal(matchesTagsLikeMpush(null, ['vip']), false);
    assert.equal(matchesTagsLikeMpush(undefined, ['']), false);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatHeaderLines, parseHeaderLines } from '../../../src/protocol/index.js';

describe('HttpRequest / HttpResponse header lines (mpush-wire §3)', () => {
  it('writes every line with its \\n (the Java SDK drops an unterminated last line)', () => {
    assert.equal(
      formatHeaderLines([
        ['a', '1'],
        ['b', 'x:y'],
      ]),
      'a:1\nb:x:y\n',
    );
    assert.equal(formatHeaderLines([]), '');
  });

  it('reads \\n or \\r\\n lines, the last one terminated or not; the value keeps its colons', () => {
    assert.deepEqual(parseHeaderLines('a:1\r\nB: x:y \nc:'), [
      ['a', '1'],
      ['B', 'x:y'],
      ['c', ''],
    ]);
  });

  it('skips lines with no name, as MPush does, and keeps repeated names', () => {
    assert.deepEqual(parseHeaderLines(':v\nnovalue\n\nk:1\nk:2\n'), [
      ['k', '1'],
      ['k', '2'],
    ]);
  });
});

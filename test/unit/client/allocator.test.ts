import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatServerList, parseServerList } from '../../../src/client/device/allocator.js';
import { DeviceClientError } from '../../../src/client/device/errors.js';

function refused(text: string, pattern: RegExp): void {
  assert.throws(
    () => parseServerList(text),
    (e: unknown) => e instanceof DeviceClientError && e.code === 'MPUSH_ERR_ALLOC' && pattern.test(e.message),
    JSON.stringify(text),
  );
}

describe("MPush's allocator body", () => {
  it('formats host:port joined by commas, nothing else', () => {
    const text = formatServerList([
      { host: '10.0.0.1', port: 3000 },
      { host: 'push.example.com', port: 443 },
    ]);
    assert.equal(text, '10.0.0.1:3000,push.example.com:443');
  });

  it('reads back what it formats, in order', () => {
    assert.deepEqual(parseServerList('10.0.0.1:3000,push.example.com:443'), [
      { host: '10.0.0.1', port: 3000 },
      { host: 'push.example.com', port: 443 },
    ]);
  });

  it('takes the port after the last colon (an IPv6 host keeps its colons)', () => {
    assert.deepEqual(parseServerList('::1:3000'), [{ host: '::1', port: 3000 }]);
  });

  it('tolerates one trailing newline from another allocator', () => {
    assert.deepEqual(parseServerList('h:1\n'), [{ host: 'h', port: 1 }]);
    assert.deepEqual(parseServerList('h:1\r\n'), [{ host: 'h', port: 1 }]);
  });

  it('refuses an empty list and every malformed entry, naming it', () => {
    refused('', /no server/);
    refused('\n', /no server/);
    refused('h', /"h"/);
    refused(':3000', /":3000"/);
    refused('h:', /"h:"/);
    refused('h:0', /"h:0"/);
    refused('h:65536', /"h:65536"/);
    refused('h:30x', /"h:30x"/);
    refused('h:1,,h:2', /""/);
    refused('h:1, h:2', /" h:2"/);
    refused('h:1\n\n', /want host:port/);
    refused('a b:1', /"a b:1"/);
  });

  it('names at most 100 characters of a long bad entry', () => {
    const long = `${'x'.repeat(5000)}`;
    assert.throws(
      () => parseServerList(long),
      (e: unknown) => e instanceof Error && e.message.length < 200,
    );
  });
});

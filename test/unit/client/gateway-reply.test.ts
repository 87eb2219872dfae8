import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodePushReply, decodeReceipt } from '../../../src/client/push/gateway-reply.js';

describe('gateway-reply: the inbox parts of a push reply', () => {
  it('reads stored / storeError / timePoints of an extended reply', () => {
    const ok = JSON.stringify({
      userId: 'u',
      clientType: 1,
      timePoints: { acked: 5 },
      messageId: 'm',
      stored: false,
    });
    assert.deepEqual(decodePushReply(ok, 'm', true), { stored: false, timePoints: { acked: 5 } });
    const err = JSON.stringify({ messageId: 'm', stored: false, storeError: 'full' });
    assert.deepEqual(decodePushReply(err, 'm', false), { stored: false, storeError: 'full' });
    assert.deepEqual(decodePushReply('{"messageId":"m","stored":true}', 'm', false), { stored: true });
  });

  it('a reply from a gateway without the extension (MPush) says nothing was stored', () => {
    assert.deepEqual(decodePushReply('', 'm', false), { stored: false });
    const mpush = JSON.stringify({ userId: 'u', clientType: 1, timePoints: ['push-center-begin', 1] });
    assert.deepEqual(decodePushReply(mpush, 'm', false), { stored: false });
  });

  it('refuses a reply naming another message, or with fields of the wrong type', () => {
    assert.throws(
      () => decodePushReply('{"messageId":"other","stored":true}', 'm', true),
      /names message "other"/,
    );
    assert.throws(() => decodePushReply('{"stored":"yes"}', 'm', false), /stored is not a boolean/);
    assert.throws(() => decodePushReply('{"stored":true,"storeError":1}', 'm', false), /storeError/);
    assert.throws(() => decodePushReply('[]', 'm', false), /not an object/);
    assert.throws(() => decodePushReply('{', 'm', true), /not JSON/);
  });
});

describe('gateway-reply: a message receipt', () => {
  const good = {
    messageId: 'm',
    createdAt: 1,
    updatedAt: 2,
    users: [
      {
        userId: 'u',
        inbox: 'stored',
        storedAt: 1,
        devices: [{ clientType: 1, clientTypeName: 'mobile', state: 'acked', ackedAt: 2 }],
      },
    ],
  };
  it('decodes the receipt', () => {
    assert.deepEqual(decodeReceipt(JSON.stringify(good)), good);
  });
  it('refuses a receipt missing or mistyping a field', () => {
    const bad = (f: (r: typeof good & Record<string, unknown>) => void) => {
      const r = structuredClone(good) as typeof good & Record<string, unknown>;
      f(r);
      return JSON.stringify(r);
    };
    assert.throws(() => decodeReceipt(bad((r) => delete (r as Partial<typeof good>).messageId)), /messageId/);
    assert.throws(() => decodeReceipt(bad((r) => (r.users = {} as never))), /users is not an array/);
    assert.throws(() => decodeReceipt(bad((r) => (r.users[0]!.inbox = 'gone'))), /inbox state/);
    assert.throws(
      () => decodeReceipt(bad((r) => (r.users[0]!.devices[0]!.state = 'lost'))),
      /receipt device/,
    );
    assert.throws(
      () => decodeReceipt(bad((r) => (r.users[0]!.devices[0]!.ackedAt = '2' as never))),
      /ackedAt/,
    );
  });
});

// The one error shape: protocol and crypto errors carry their machine code, the MPush ErrorCode their
// ERROR reply sends and the disconnect reason, chosen so what the device port sends stays what it sent.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AesCipher,
  CryptoError,
  type CryptoErrorCode,
  deflate,
  generateRsaKeyPair,
  inflate,
  MPUSH_ERR_AES_DECRYPT,
  MPUSH_ERR_INFLATE,
  MPUSH_ERR_INFLATE_TOO_LARGE,
  MPUSH_ERR_KEY,
  MPUSH_ERR_RSA_BLOCK,
  RsaDecryptor,
} from '../../../src/crypto/index.js';
import {
  BodyReader,
  Disconnect,
  ErrorCode,
  errorReply,
  FrameDecoder,
  MPushError,
  ProtocolError,
  type ProtocolErrorCode,
  ProtocolErrorCodes,
} from '../../../src/protocol/index.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail('expected a throw');
}

describe('ProtocolError and CryptoError share one shape', () => {
  it('both are MPushErrors and stay told apart by instanceof, with their codes and names', () => {
    const p = new ProtocolError('MPUSH_ERR_TRUNCATED', 'short');
    const c = new CryptoError(MPUSH_ERR_AES_DECRYPT, 'bad padding');
    assert.ok(p instanceof MPushError && p instanceof ProtocolError && !(p instanceof CryptoError));
    assert.ok(c instanceof MPushError && c instanceof CryptoError && !(c instanceof ProtocolError));
    assert.deepEqual([p.name, p.code, p.message], ['ProtocolError', 'MPUSH_ERR_TRUNCATED', 'short']);
    assert.deepEqual([c.name, c.code, c.message], ['CryptoError', 'MPUSH_ERR_AES_DECRYPT', 'bad padding']);
  });

  it('keeps the cause', () => {
    const cause = new Error('inner');
    assert.equal(new CryptoError(MPUSH_ERR_KEY, 'outer', { cause }).cause, cause);
    assert.equal(new ProtocolError('MPUSH_ERR_BAD_FIELD', 'outer', { cause }).cause, cause);
  });
});

describe('each machine code is answered as the device port answers it today', () => {
  // Framing failures reach ConnectionServer.onProtocolError, which sends UNKNOWN (-1); everything
  // else is found while handling a packet, and dispatch sends DISPATCH_ERROR (100), as MPush does
  // for a handshake that is not valid RSA (mpush-wire §12). Both close with PROTOCOL_ERROR.
  const protocol: Record<ProtocolErrorCode, [number, string]> = {
    MPUSH_ERR_PACKET_TOO_LARGE: [ErrorCode.UNKNOWN, 'protocol-error'],
    MPUSH_ERR_NEGATIVE_LENGTH: [ErrorCode.UNKNOWN, 'protocol-error'],
    MPUSH_ERR_BAD_JSON_PACKET: [ErrorCode.UNKNOWN, 'protocol-error'],
    MPUSH_ERR_TRUNCATED: [ErrorCode.DISPATCH_ERROR, 'protocol-error'],
    MPUSH_ERR_BAD_LENGTH: [ErrorCode.DISPATCH_ERROR, 'protocol-error'],
    MPUSH_ERR_INVALID_UTF8: [ErrorCode.DISPATCH_ERROR, 'protocol-error'],
    MPUSH_ERR_BAD_FIELD: [ErrorCode.DISPATCH_ERROR, 'protocol-error'],
    // "too many packets during fast connect": 100 and PROTOCOL_ERROR, as rejectInput sends it.
    MPUSH_ERR_QUEUE_FULL: [ErrorCode.DISPATCH_ERROR, 'protocol-error'],
    // dispatch's unsupported(): ERROR 101, closed as unsupported-command (mpush-wire §2).
    MPUSH_ERR_UNKNOWN_COMMAND: [ErrorCode.UNSUPPORTED_CMD, 'unsupported-command'],
    // The handlers' "not handshake": code 0 and NOT_HANDSHAKED (mpush-wire §12).
    MPUSH_ERR_NOT_HANDSHAKED: [0, 'not-handshaked'],
  };
  const crypto: Record<CryptoErrorCode, [number, string]> = {
    MPUSH_ERR_RSA_BLOCK: [ErrorCode.DISPATCH_ERROR, 'protocol-error'],
    MPUSH_ERR_AES_DECRYPT: [ErrorCode.DISPATCH_ERROR, 'protocol-error'],
    MPUSH_ERR_INFLATE_TOO_LARGE: [ErrorCode.DISPATCH_ERROR, 'protocol-error'],
    MPUSH_ERR_INFLATE: [ErrorCode.DISPATCH_ERROR, 'protocol-error'],
    MPUSH_ERR_KEY: [ErrorCode.DISPATCH_ERROR, 'protocol-error'],
  };

  it('covers every protocol code', () => {
    assert.deepEqual(Object.keys(protocol).sort(), Object.keys(ProtocolErrorCodes).sort());
    for (const [code, [errorCode, reason]] of Object.entries(protocol)) {
      const err = new ProtocolError(code as ProtocolErrorCode, 'x');
      assert.deepEqual([err.errorCode, err.disconnect.name], [errorCode, reason], code);
    }
  });

  it('covers every crypto code', () => {
    for (const [code, [errorCode, reason]] of Object.entries(crypto)) {
      const err = new CryptoError(code as CryptoErrorCode, 'x');
      assert.deepEqual([err.errorCode, err.disconnect.name], [errorCode, reason], code);
    }
  });

  it('holds for the errors the decoders, ciphers and zlib really throw', () => {
    const decoder = new FrameDecoder({ onPacket: () => {}, onHeartbeat: () => {} }, { maxBodyLength: 8 });
    const header = Buffer.alloc(13);
    header.writeInt32BE(-1, 0);
    const cases: [unknown, string, number][] = [
      [thrown(() => decoder.push(header)), 'MPUSH_ERR_NEGATIVE_LENGTH', ErrorCode.UNKNOWN],
      [
        thrown(() => new BodyReader(Buffer.alloc(1)).readInt()),
        'MPUSH_ERR_TRUNCATED',
        ErrorCode.DISPATCH_ERROR,
      ],
      [
        thrown(() => new AesCipher(Buffer.alloc(16), Buffer.alloc(16)).decrypt(Buffer.alloc(16))),
        MPUSH_ERR_AES_DECRYPT,
        ErrorCode.DISPATCH_ERROR,
      ],
      [
        thrown(() => new RsaDecryptor(generateRsaKeyPair(512).privateKey).decrypt(Buffer.alloc(3))),
        MPUSH_ERR_RSA_BLOCK,
        ErrorCode.DISPATCH_ERROR,
      ],
      [thrown(() => inflate(Buffer.from('not zlib'), 100)), MPUSH_ERR_INFLATE, ErrorCode.DISPATCH_ERROR],
      [
        thrown(() => inflate(deflate(Buffer.alloc(1000)), 100)),
        MPUSH_ERR_INFLATE_TOO_LARGE,
        ErrorCode.DISPATCH_ERROR,
      ],
    ];
    for (const [err, code, errorCode] of cases) {
      assert.ok(err instanceof MPushError, String(err));
      assert.deepEqual(
        [err.code, err.errorCode, err.disconnect],
        [code, errorCode, Disconnect.PROTOCOL_ERROR],
      );
    }
  });
});

describe('errorReply', () => {
  it('answers an MPushError with its own code, message and disconnect reason', () => {
    const err = new ProtocolError('MPUSH_ERR_BAD_FIELD', 'body.userId must be a string');
    assert.deepEqual(errorReply(err), {
      code: ErrorCode.DISPATCH_ERROR,
      reason: 'body.userId must be a string',
      disconnect: Disconnect.PROTOCOL_ERROR,
      badInput: true,
    });
    const unsupported = errorReply(new ProtocolError('MPUSH_ERR_UNKNOWN_COMMAND', 'unsupported command'));
    assert.deepEqual(
      [unsupported.code, unsupported.disconnect],
      [ErrorCode.UNSUPPORTED_CMD, Disconnect.UNSUPPORTED_CMD],
    );
  });

  it('answers anything else as our own failure, without its message', () => {
    for (const err of [
      new Error('secret internals'),
      new TypeError('x is undefined'),
      'a string',
      undefined,
    ]) {
      assert.deepEqual(errorReply(err), {
        code: ErrorCode.DISPATCH_ERROR,
        reason: 'internal error',
        disconnect: Disconnect.DISPATCH_ERROR,
        badInput: false,
      });
    }
  });
});

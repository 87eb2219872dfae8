import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';

/** A certificate and its key, as PEM and as files. */
export interface TestCert {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
  /** SHA-256 fingerprint, as X509Certificate.fingerprint256 (and a TLS peer certificate) says it. */
  fingerprint256: string;
  /** The certificate followed by its issuer's (a CA's own: itself alone), as tls.cert may hold. */
  chainFile: string;
}

/** A test PKI made in a temporary directory: nothing of it is committed. */
export interface TestPki {
  dir: string;
  ca: TestCert;
  /** Two server certificates for 127.0.0.1 and localhost, both signed by `ca` (a reload swaps them). */
  server: TestCert;
  server2: TestCert;
  /** A client certificate signed by `ca`. */
  client: TestCert;
  /** A CA of its own and a client certificate it signed: trusted by nobody here. */
  otherCa: TestCert;
  rogueClient: TestCert;
  remove(): void;
}

type Options = NonNullable<Parameters<typeof generate>[1]>;
type Extensions = NonNullable<Options['extensions']>;

const ec = { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' } as const;

async function make(dir: string, name: string, opts: Options): Promise<TestCert> {
  const pems = await generate([{ name: 'commonName', value: name }], { ...ec, ...opts });
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  writeFileSync(certFile, pems.cert);
  writeFileSync(keyFile, pems.private, { mode: 0o600 });
  const chainFile = join(dir, `${name}.chain.crt`);
  writeFileSync(chainFile, `${pems.cert.trim()}\n${opts.ca ? `${opts.ca.cert.trim()}\n` : ''}`);
  return {
    chainFile,
    cert: pems.cert,
    key: pems.private,
    certFile,
    keyFile,
    fingerprint256: new X509Certificate(pems.cert).fingerprint256,
  };
}

const caExtensions: Extensions = [
  { name: 'basicConstraints', cA: true, critical: true },
  { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
];

export async function makeTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'mpush-pki-'));
  const ca = await make(dir, 'test-ca', { extensions: caExtensions });
  const signer = { ca: { cert: ca.cert, key: ca.key } };
  const serverExt: Extensions = [
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        { type: 7, ip: '127.0.0.1' },
      ],
    },
  ];
  const server = await make(dir, 'server-1', { ...signer, extensions: serverExt });
  const server2 = await make(dir, 'server-2', { ...signer, extensions: serverExt });
  const clientExt: Extensions = [
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true },
    { name: 'extKeyUsage', clientAuth: true },
  ];
  const client = await make(dir, 'push-client', { ...signer, extensions: clientExt });
  const otherCa = await make(dir, 'other-ca', { extensions: caExtensions });
  const rogueClient = await make(dir, 'rogue-client', {
    ca: { cert: otherCa.cert, key: otherCa.key },
    extensions: clientExt,
  });
  return {
    dir,
    ca,
    server,
    server2,
    client,
    otherCa,
    rogueClient,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

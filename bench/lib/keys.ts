import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** MPush's published default key pair, from the repository's test fixtures (test/fixtures/README.md). */
export function defaultKeys(): { privateKey: string; publicKey: string } {
  const file = fileURLToPath(new URL('../../../test/fixtures/mpush-default-test-keys.json', import.meta.url));
  return JSON.parse(readFileSync(file, 'utf8'));
}

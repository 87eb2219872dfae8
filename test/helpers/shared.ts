import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The repository's test fixtures (test/fixtures/, copied from MPush's sources: see its README). Tests run
 * compiled from dist/test/helpers, so the folder is found from this file, not from the working directory.
 */
export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`../../../test/fixtures/${name}`, import.meta.url));
}

/** A fixture file, parsed as JSON. */
export function readFixture<T>(name: string): T {
  return JSON.parse(readFileSync(fixturePath(name), 'utf8')) as T;
}

/** MPush's published default key pair (non-CRT private key), test data only. */
export function mpushDefaultKeys(): { publicKey: string; privateKey: string } {
  return readFixture('mpush-default-test-keys.json');
}

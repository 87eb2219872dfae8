import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** The read-only ../shared/protocol folder (vectors, MPush's default keys). Missing → a clear failure. */
export function sharedProtocolDir(): string {
  const dir = process.env.MPUSH_SHARED_DIR ?? resolve(process.cwd(), '../shared/protocol');
  if (!existsSync(resolve(dir, 'vectors.json'))) {
    throw new Error(
      `shared protocol folder not found at ${dir}: set MPUSH_SHARED_DIR to the folder holding vectors.json`,
    );
  }
  return dir;
}

/** MPush's published default key pair (non-CRT private key), test data only. */
export function mpushDefaultKeys(): { publicKey: string; privateKey: string } {
  return JSON.parse(readFileSync(resolve(sharedProtocolDir(), 'mpush-default-test-keys.json'), 'utf8'));
}

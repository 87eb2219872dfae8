// Heap snapshot census: self sizes summed by object kind, and the difference between two snapshots
// divided by the connections added between them. Used by main.ts --heap-diff; also a command:
//   node dist/bench/connections/heap-census.js before.heapsnapshot after.heapsnapshot 2000

import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface CensusEntry {
  count: number;
  bytes: number;
}

interface HeapSnapshotFile {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Node kinds whose names are their contents (strings) or noise (code): counted by kind alone. */
const BY_TYPE_ONLY = new Set([
  'string',
  'concatenated string',
  'sliced string',
  'number',
  'code',
  'symbol',
  'bigint',
]);

/** Self size and count per `type:name` ("object:Connection", "native:Node / TCPWrap", "string"). */
export function census(path: string): Map<string, CensusEntry> {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as HeapSnapshotFile;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const stride = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const out = new Map<string, CensusEntry>();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += stride) {
    const type = types[nodes[i + iType]!] ?? '?';
    const key = BY_TYPE_ONLY.has(type) ? type : `${type}:${snap.strings[nodes[i + iName]!]}`;
    const e = out.get(key);
    const size = nodes[i + iSize]!;
    if (e) {
      e.count++;
      e.bytes += size;
    } else {
      out.set(key, { count: 1, bytes: size });
    }
  }
  return out;
}

export interface CensusDelta {
  kind: string;
  perConnection: { count: number; bytes: number };
  total: { count: number; bytes: number };
}

/** What grew between two censuses, per connection, largest first. */
export function diffCensus(
  before: Map<string, CensusEntry>,
  after: Map<string, CensusEntry>,
  connections: number,
  top = 30,
): { totalBytesPerConnection: number; kinds: CensusDelta[] } {
  const rows: CensusDelta[] = [];
  let total = 0;
  for (const [kind, a] of after) {
    const b = before.get(kind) ?? { count: 0, bytes: 0 };
    const bytes = a.bytes - b.bytes;
    const count = a.count - b.count;
    total += bytes;
    if (bytes === 0 && count === 0) continue;
    rows.push({
      kind,
      perConnection: {
        count: Math.round((count / connections) * 100) / 100,
        bytes: Math.round((bytes / connections) * 10) / 10,
      },
      total: { count, bytes },
    });
  }
  for (const [kind, b] of before) if (!after.has(kind)) total -= b.bytes;
  rows.sort((x, y) => y.total.bytes - x.total.bytes);
  return { totalBytesPerConnection: Math.round((total / connections) * 10) / 10, kinds: rows.slice(0, top) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [a, b, n] = process.argv.slice(2);
  if (!a || !b || !n) {
    process.stderr.write('usage: heap-census before.heapsnapshot after.heapsnapshot connections\n');
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(diffCensus(census(a), census(b), Number(n), 40), null, 2)}\n`);
}

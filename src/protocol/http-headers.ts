// The header block of HttpRequest and HttpResponse (mpush-wire §3): `name:value` lines, each ended by
// `\n` (MPush's Java SDK reads only `\n`-terminated lines, so the last one needs its `\n` too).
// Browser-safe: no Buffer, no Node module.

/** One header as it travels; a name may come more than once. */
export type HeaderLine = readonly [name: string, value: string];

/**
 * Reads a header block: `\n`-separated lines, the name before the first `:`, the value after it,
 * both trimmed (a CRLF block reads the same). A line with no name is skipped, as MPush skips it.
 */
export function parseHeaderLines(block: string): HeaderLine[] {
  const out: HeaderLine[] = [];
  for (const line of block.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    if (name !== '') out.push([name, line.slice(colon + 1).trim()]);
  }
  return out;
}

/** Writes a header block, every line `\n`-terminated; `''` for none. */
export function formatHeaderLines(headers: Iterable<HeaderLine>): string {
  let out = '';
  for (const [name, value] of headers) out += `${name}:${value}\n`;
  return out;
}

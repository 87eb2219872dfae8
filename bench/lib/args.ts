// Benchmark flags on the CLI's parser (src/cli/args.ts: strict, a misspelt flag is an error naming it).
// A flag's default gives its type (number, string, boolean); `--quick` swaps in small defaults.

import { type FlagTable, parseFlags, UsageError } from '../../src/cli/args.js';

type Spec = Record<string, number | string | boolean>;
type Parsed<S extends Spec> = {
  [K in keyof S]: S[K] extends number ? number : S[K] extends boolean ? boolean : string;
};

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * The flags of bench/`name`: `spec`'s keys are camelCase, their flags kebab-case; a number must be
 * finite and not negative. A bad command line ends the process (status 2) with a line naming the
 * flag; `--help` prints the flags with their defaults.
 */
export function benchFlags<S extends Spec>(
  name: string,
  spec: S,
  quick: Partial<Parsed<S>> = {},
): Parsed<S> & { quick: boolean } {
  const table: FlagTable = { help: { type: 'boolean' }, quick: { type: 'boolean' } };
  for (const [k, v] of Object.entries(spec))
    table[kebab(k)] = { type: typeof v === 'boolean' ? 'boolean' : 'string' };
  try {
    const given = parseFlags(`bench/${name}`, process.argv.slice(2), table);
    const out: Record<string, unknown> = { ...spec, ...(given.quick ? quick : {}), quick: !!given.quick };
    if (given.help) {
      for (const k of Object.keys(spec)) process.stderr.write(`  --${kebab(k)} ${JSON.stringify(out[k])}\n`);
      process.exit(0);
    }
    for (const k of Object.keys(spec)) {
      const raw = given[kebab(k)];
      if (raw === undefined) continue;
      const n = Number(raw);
      if (typeof spec[k] !== 'number') out[k] = raw;
      else if (raw !== '' && Number.isFinite(n) && n >= 0) out[k] = n;
      else throw new UsageError(`bench/${name}: --${kebab(k)} must be a non-negative number, got ${raw}`);
    }
    return out as Parsed<S> & { quick: boolean };
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message} (--help lists the flags)\n`);
    process.exit(2);
  }
}

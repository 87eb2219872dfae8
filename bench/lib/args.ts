// Benchmark flags: node:util parseArgs in strict mode, so a misspelt flag is an error that names it
// instead of a silently ignored setting. Every flag has a default whose type (number, string,
// boolean) is the flag's type; `--quick` swaps in a small set of defaults; an environment variable
// `<prefix><FLAG>` (upper case, - as _) stands in for a flag not given.

import { parseArgs } from 'node:util';

type Spec = Record<string, number | string | boolean>;
type Parsed<S extends Spec> = {
  [K in keyof S]: S[K] extends number ? number : S[K] extends boolean ? boolean : string;
};

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * Parses `argv` against `spec` (keys are camelCase, flags their kebab-case unless `rename` says
 * otherwise). Booleans take no value (`--flag`, or `--flag=true|false`); numbers must be finite
 * and not negative. An unknown flag, a missing value or a bad number ends the process (status 2)
 * with a line naming the flag; `--help` prints the flags with their defaults and exits.
 */
export function parseFlags<S extends Spec>(
  spec: S,
  opts: { env: string; rename?: Partial<Record<keyof S, string>>; quick?: Partial<Parsed<S>> },
  argv = process.argv.slice(2),
): Parsed<S> & { quick: boolean } {
  const flagOf = (k: keyof S) => opts.rename?.[k] ?? kebab(String(k));
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  if (opts.quick) options.quick = { type: 'boolean' };
  for (const k of Object.keys(spec))
    options[flagOf(k)] = { type: typeof spec[k] === 'boolean' ? 'boolean' : 'string' };
  // `--flag=true|false` for a boolean: parseArgs takes no value there, so it is taken out first.
  const given: Record<string, boolean> = {};
  const args = argv.filter((a) => {
    const m = /^--([^=]+)=(true|false)$/.exec(a);
    if (!m || options[m[1]!]?.type !== 'boolean') return true;
    given[m[1]!] = m[2] === 'true';
    return false;
  });
  let values: Record<string, string | boolean | undefined>;
  try {
    values = { ...given, ...parseArgs({ args, options, strict: true, allowPositionals: false }).values };
  } catch (err) {
    return fail((err as Error).message);
  }
  const quick = values.quick === true;
  const defaults: Spec = { ...spec, ...(quick ? opts.quick : {}) };
  if (values.help) {
    for (const k of Object.keys(spec))
      process.stderr.write(`  --${flagOf(k)} ${JSON.stringify(defaults[k])}\n`);
    if (opts.quick) process.stderr.write('  --quick   small sizes, for a quick look\n');
    process.exit(0);
  }
  const out: Record<string, number | string | boolean> = { quick };
  for (const k of Object.keys(spec)) {
    const flag = flagOf(k);
    const raw = values[flag] ?? process.env[`${opts.env}${flag.toUpperCase().replace(/-/g, '_')}`];
    const def = defaults[k]!;
    if (raw === undefined) out[k] = def;
    else if (typeof def === 'boolean')
      out[k] = raw === true || (raw !== 'false' && raw !== '0' && raw !== false);
    else if (typeof def === 'number') {
      const n = Number(raw);
      if (raw === '' || !Number.isFinite(n) || n < 0)
        return fail(`--${flag} must be a non-negative number, got ${String(raw)}`);
      out[k] = n;
    } else out[k] = String(raw);
  }
  return out as Parsed<S> & { quick: boolean };
}

function fail(message: string): never {
  process.stderr.write(`${message} (--help lists the flags)\n`);
  process.exit(2);
}

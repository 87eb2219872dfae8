import { type ParseArgsConfig, parseArgs } from 'node:util';
import { closest } from '../util/closest.js';

/** A command line that does not fit its command: said in one line, and the CLI exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The flags of one command, in node:util `parseArgs`' options form. */
export type FlagTable = NonNullable<ParseArgsConfig['options']>;

type StrictConfig<O extends FlagTable> = {
  args: string[];
  options: O;
  strict: true;
  allowPositionals: false;
};

/** The value of each flag given, typed by its table. */
export type Flags<O extends FlagTable> = ReturnType<typeof parseArgs<StrictConfig<O>>>['values'];

/**
 * Parses one command's flags with node:util `parseArgs` in strict mode: a flag not in `table`, a
 * flag with no value, or a stray word is a {@link UsageError} naming it (and the flag that was
 * probably meant), so a typo such as `--tag` for `--tags` never runs the command without it.
 * A value that is a negative number (`--timeout -5`) is taken as the value, not as a flag.
 */
export function parseFlags<O extends FlagTable>(
  command: string,
  argv: readonly string[],
  table: O,
): Flags<O> {
  const args = joinNegativeValues(argv, table);
  try {
    return parseArgs({ args, options: table, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw explain(command, args, table, err as Error);
  }
}

/**
 * Splits `mpush start`'s command line. `--<name>` flags of `named` (with their values) are left
 * for {@link parseFlags}; every other `--<key>` is a config key (`--limits.maxConnections=5`),
 * returned for the config loader, which alone knows the schema and names a key it lacks. A key's
 * value follows `=`, or is the next word unless that is a flag; a key alone is `true`.
 */
export function splitConfigFlags(
  argv: readonly string[],
  named: FlagTable,
): { rest: string[]; keys: Record<string, string | boolean> } {
  const rest: string[] = [];
  const keys: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i)); // parseFlags refuses what follows: start takes no arguments
      break;
    }
    if (!arg.startsWith('--')) {
      rest.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq > 0 ? eq : undefined);
    const next = argv[i + 1];
    const nextIsValue = next !== undefined && !next.startsWith('--');
    if (Object.hasOwn(named, name)) {
      rest.push(arg);
      // Its value stays beside it, never read as a key.
      if (eq < 0 && named[name]!.type === 'string' && nextIsValue) rest.push(argv[++i]!);
    } else if (eq > 0) {
      keys[name] = arg.slice(eq + 1);
    } else if (nextIsValue) {
      keys[name] = argv[++i]!;
    } else {
      keys[name] = true;
    }
  }
  return { rest, keys };
}

/** `--timeout -5` → `--timeout=-5`: parseArgs would otherwise take `-5` for a flag. */
function joinNegativeValues(argv: readonly string[], table: FlagTable): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    const isString = arg.startsWith('--') && table[arg.slice(2)]?.type === 'string';
    if (isString && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** Says what strict parsing refused, read from the tokens of a lenient pass over the same words. */
function explain(command: string, args: string[], table: FlagTable, err: Error): UsageError {
  const { tokens } = parseArgs({ args, options: table, strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) {
    if (t.kind === 'positional')
      return new UsageError(`${command}: unexpected argument ${JSON.stringify(t.value)}`);
    if (t.kind !== 'option') continue;
    const spec = Object.hasOwn(table, t.name) ? table[t.name] : undefined;
    if (!spec) {
      const near = t.rawName.startsWith('--') ? closest(t.name, Object.keys(table)) : undefined;
      return new UsageError(
        `${command}: unknown flag ${t.rawName}${near ? ` (did you mean --${near}?)` : ''}`,
      );
    }
    if (spec.type === 'string' && t.value === undefined)
      return new UsageError(`${command} needs ${t.rawName} <value>; none was given`);
    if (spec.type === 'string' && !t.inlineValue && t.value?.startsWith('-')) {
      return new UsageError(
        `${command} needs ${t.rawName} <value>; ${JSON.stringify(t.value)} is a flag (write ${t.rawName}=${t.value} if it is the value)`,
      );
    }
    if (spec.type === 'boolean' && t.value !== undefined)
      return new UsageError(`${command}: ${t.rawName} takes no value`);
  }
  return new UsageError(`${command}: ${err.message}`);
}

import { type Logger as PinoLogger, pino } from 'pino';

/** The levels a node logs at (`log.level`). */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/**
 * The node's logger: one JSON line per event (pino), a message and flat fields. A component gets
 * its own child (`log.child({ component: 'server' })`), whose lines carry that field.
 */
export interface Logger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  enabled(level: LogLevel): boolean;
  /** A logger whose every line also carries `bindings`. */
  child(bindings: Record<string, unknown>): Logger;
}

/** Where lines go: a function given each line, or a stream with `write`. */
export type LogSink = ((line: string) => void) | { write(line: string): unknown };

function wrap(p: PinoLogger): Logger {
  return {
    error: (m, f) => (f === undefined ? p.error(m) : p.error(f, m)),
    warn: (m, f) => (f === undefined ? p.warn(m) : p.warn(f, m)),
    info: (m, f) => (f === undefined ? p.info(m) : p.info(f, m)),
    debug: (m, f) => (f === undefined ? p.debug(m) : p.debug(f, m)),
    enabled: (l) => p.isLevelEnabled(l),
    child: (bindings) => wrap(p.child(bindings)),
  };
}

/**
 * A pino logger at `level` (an unknown level is `info`), writing JSON lines to `sink`, by default
 * to stderr synchronously: a line is out before the next statement runs, so what a process prints
 * on stdout and stderr keeps its order, and nothing is lost on exit.
 */
export function createLogger(level: string, name = 'mpush', sink?: LogSink): Logger {
  const known: readonly string[] = ['error', 'warn', 'info', 'debug'];
  const destination =
    sink === undefined
      ? pino.destination({ dest: 2, sync: true })
      : typeof sink === 'function'
        ? { write: sink }
        : sink;
  return wrap(
    pino(
      {
        name,
        level: known.includes(level) ? level : 'info',
        timestamp: pino.stdTimeFunctions.isoTime,
        // `"level":"warn"`, not pino's numbers: read by people and by grep as often as by tools.
        formatters: { level: (label) => ({ level: label }) },
      },
      destination,
    ),
  );
}

const noop = () => {};

/** A logger that drops everything (tests, embedded use). */
export const silentLogger: Logger = {
  error: noop,
  warn: noop,
  info: noop,
  debug: noop,
  enabled: () => false,
  child: () => silentLogger,
};

/** A small levelled logger writing one line per event to stderr. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
const order: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface Logger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  enabled(level: LogLevel): boolean;
}

export function createLogger(
  level: string,
  name = 'mpush',
  sink: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  const max = order[level as LogLevel] ?? order.info;
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (order[lvl] > max) return;
    const extra = fields ? ` ${JSON.stringify(fields)}` : '';
    sink(`${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${name}: ${msg}${extra}\n`);
  };
  return {
    error: (m, f) => emit('error', m, f),
    warn: (m, f) => emit('warn', m, f),
    info: (m, f) => emit('info', m, f),
    debug: (m, f) => emit('debug', m, f),
    enabled: (l) => order[l] <= max,
  };
}

/** A logger that drops everything (tests, embedded use). */
export const silentLogger: Logger = createLogger('error', 'mpush', () => {});

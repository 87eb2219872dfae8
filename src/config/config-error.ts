/** A configuration value that does not fit its key. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

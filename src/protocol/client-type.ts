/** Device classes; a user holds at most one live connection per class (mpush-wire §8). */
export const ClientType = {
  MOBILE: 1,
  PC: 2,
  WEB: 3,
  UNKNOWN: -1,
} as const;

export type ClientTypeValue = (typeof ClientType)[keyof typeof ClientType];

const rules: ReadonlyArray<readonly [string, ClientTypeValue]> = [
  ['android', ClientType.MOBILE],
  ['ios', ClientType.MOBILE],
  ['windows', ClientType.PC],
  ['mac', ClientType.PC],
  ['linux', ClientType.PC],
  ['web', ClientType.WEB],
  ['h5', ClientType.WEB],
];

/** MPush's rule: a substring match on the lower-cased osName, first rule wins. */
export function clientTypeOf(osName: string): ClientTypeValue {
  const os = osName.toLowerCase();
  for (const [needle, type] of rules) {
    if (os.includes(needle)) return type;
  }
  return ClientType.UNKNOWN;
}

/** Name of a client type, for logs and APIs. */
export function clientTypeName(type: number): string {
  switch (type) {
    case ClientType.MOBILE:
      return 'mobile';
    case ClientType.PC:
      return 'pc';
    case ClientType.WEB:
      return 'web';
    default:
      return 'unknown';
  }
}

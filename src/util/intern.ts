/**
 * The one copy of `s` V8 keeps for property names (its string table): for values that thousands of
 * connections share (osName, osVersion, clientVersion), each decoded afresh from its handshake.
 * The table is weak, so a value no connection holds any more is collected: no bound to configure.
 */
export function intern(s: string): string {
  // A computed property key is internalized; Object.keys hands back that copy.
  return Object.keys({ [s]: 0 })[0] ?? s;
}

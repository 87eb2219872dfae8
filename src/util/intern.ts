/**
 * The one copy of `s` V8 keeps for property names (its string table), flat: for values that
 * thousands of connections share (osName, osVersion, clientVersion), each decoded afresh from its
 * handshake, and for a string built by concatenation (a tree of cons strings until flattened).
 * The table is weak, so a value nothing holds any more is collected: no bound to configure.
 */
export function intern(s: string): string {
  // A computed property key is internalized; Object.keys hands back that copy.
  return Object.keys({ [s]: 0 })[0] ?? s;
}

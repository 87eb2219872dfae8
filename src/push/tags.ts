/**
 * Broadcast-by-tags matching.
 *
 * A device's tags are the `tags` string of its bind message, comma-separated ("vip,beta"); a
 * broadcast carries a set of wanted tags and reaches every device having ANY of them.
 *
 * MPush 0.8.1 (`com.mpush.common.condition.TagsCondition.test`) does
 *   `tags != null && tagList.stream().anyMatch(tags::contains)`
 * on the raw, unsplit session string, i.e. "any" semantics via substring search, so there
 * "vip" also matches a device tagged "vip2" and an empty wanted tag matches every tagged
 * device. `matchesAnyTag` is the whole-tag version of the same "any" rule;
 * `matchesTagsLikeMpush` reproduces MPush's substring behaviour exactly for callers that want
 * bug-for-bug compatibility.
 */

/** Split a bind `tags` string on ',', trim each tag, drop empty ones, and dedupe (first wins). */
export function parseTags(s: string | null | undefined): string[] {
  if (!s) return [];
  const out: string[] = [];
  const seen = new Set<string>();
  for (const part of s.split(',')) {
    const tag = part.trim();
    if (tag.length === 0 || seen.has(tag)) continue;
    seen.add(tag);
    out.push(tag);
  }
  return out;
}

/** True if any of the device's tags is wanted (an empty `wanted` set matches nothing). */
export function matchesAnyTag(deviceTags: readonly string[], wanted: ReadonlySet<string>): boolean {
  if (wanted.size === 0) return false;
  for (const tag of deviceTags) {
    if (wanted.has(tag)) return true;
  }
  return false;
}

/**
 * MPush 0.8.1's exact rule: the raw (unsplit) tags string contains any wanted tag as a
 * substring. A device without tags (null/undefined) never matches.
 */
export function matchesTagsLikeMpush(rawTags: string | null | undefined, wanted: Iterable<string>): boolean {
  if (rawTags === null || rawTags === undefined) return false;
  for (const tag of wanted) {
    if (rawTags.includes(tag)) return true;
  }
  return false;
}

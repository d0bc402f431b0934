/**
 * Levenshtein distance over code points (two-row dynamic programme, O(n·m) time, O(m) memory).
 *
 * @example
 * levenshtein('kitten', 'sitting'); // 3
 */
export function levenshtein(a: string, b: string): number {
  const s = Array.from(a, (c) => c.codePointAt(0)!);
  const t = Array.from(b, (c) => c.codePointAt(0)!);
  if (s.length === 0) return t.length;
  if (t.length === 0) return s.length;
  let prev = new Int32Array(t.length + 1);
  let curr = new Int32Array(t.length + 1);
  for (let j = 0; j <= t.length; j++) prev[j] = j;
  for (let i = 1; i <= s.length; i++) {
    curr[0] = i;
    const si = s[i - 1]!;
    for (let j = 1; j <= t.length; j++) {
      const substitution = prev[j - 1]! + (si === t[j - 1]! ? 0 : 1);
      const deletion = prev[j]! + 1;
      const insertion = curr[j - 1]! + 1;
      curr[j] =
        substitution < deletion
          ? substitution < insertion
            ? substitution
            : insertion
          : deletion < insertion
            ? deletion
            : insertion;
    }
    [prev, curr] = [curr, prev];
  }
  return prev[t.length]!;
}

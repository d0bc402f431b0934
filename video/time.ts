/**
 * Timestamps as captions and reports show them, in a module with no imports
 * (contact-sheet.ts draws with canvas; `vtc video-qa`'s report needs only this).
 */

/**
 * "m:ss.s" time label.
 *
 * @example
 * formatTime(65.5); // "1:05.5"
 */
export function formatTime(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = seconds - m * 60;
  return `${m}:${s.toFixed(1).padStart(4, '0')}`;
}

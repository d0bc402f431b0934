import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository's samples/ folder, whether this code runs from the
 * TypeScript sources (samples/*.ts) or the build (dist/samples/*.js): the
 * media files are never copied into dist.
 */
export const samplesRoot: string = (() => {
  const here = dirname(fileURLToPath(import.meta.url));
  const fromDist = join(here, '..', '..', 'samples');
  return here.endsWith(join('dist', 'samples')) && existsSync(fromDist) ? fromDist : here;
})();

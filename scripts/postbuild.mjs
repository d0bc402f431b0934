// Marks the CLI entry executable after tsc (npm does this for dependencies, not for the root package).
import { chmodSync } from 'node:fs';
chmodSync(new URL('../dist/cli/main.js', import.meta.url), 0o755);

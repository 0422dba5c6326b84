/**
 * Runs every benchmark in scripts/bench/ (or those named on the command line: `npm run bench -- billing libvirt`),
 * each in its own process so that peak-memory figures do not mix. Each bench prints ratios against a
 * baseline measured in the same run and exits non-zero when a goal is missed.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('./bench/', import.meta.url));
const available = readdirSync(dir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.replace(/\.ts$/, ''))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length > 0) {
  console.error(`unknown bench(es): ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}
// The SSH benches measure what a panel with ssh2's native ciphers gets (docs/operations.md).
spawnSync('bash', [fileURLToPath(new URL('./ssh2-binding.sh', import.meta.url))], { stdio: 'inherit' });
let failed = 0;
for (const name of wanted.length > 0 ? wanted : available) {
  console.log(`\n=== bench: ${name}`);
  const result = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', `${dir}${name}.ts`], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed++;
    console.log(`=== bench ${name} exited with ${result.status ?? result.signal}`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;

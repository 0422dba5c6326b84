import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backgroundFlusher } from '../../../drivers/exec/scripts';

describe('backgroundFlusher', () => {
  it('accepts only shell parameter names (nothing else is ever spliced into a script)', () => {
    for (const bad of ['', '0', '$f', 'a b', 'f;rm', '"f"', '10']) expect(() => backgroundFlusher(bad)).toThrow();
    expect(backgroundFlusher('2')).toContain('sync -d -- "${2}"');
  });

  it('runs under sh alongside a writer, leaves the file intact and ends with the script', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ii-flusher-'));
    try {
      const file = join(dir, "name with 'quotes' $(x)");
      const script = [
        ': > "$1"',
        backgroundFlusher('1'),
        'head -c 3000000 /dev/zero | tr "\\0" a > "$1"',
        'sleep 0.3',
        'kill $w',
        'wait $w 2>/dev/null',
        'echo done',
      ].join('\n');
      expect(execFileSync('sh', ['-c', script, 'sh', file]).toString().trim()).toBe('done');
      expect(readFileSync(file).length).toBe(3_000_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

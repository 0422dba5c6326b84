import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { entries } from '../../../tsup.config';

describe('package exports', () => {
  it('every tsup entry is a subpath export with types per condition, and nothing else is', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { exports: Record<string, unknown> };
    const expected = Object.keys(entries).map((k) => (k === 'index' ? '.' : `./${k.replace(/\/index$/, '')}`));
    expect(
      Object.keys(pkg.exports)
        .filter((k) => k !== './package.json')
        .sort(),
    ).toEqual(expected.sort());
    for (const key of Object.keys(entries)) {
      const sub = key === 'index' ? '.' : `./${key.replace(/\/index$/, '')}`;
      expect(pkg.exports[sub]).toEqual({
        import: { types: `./dist/${key}.d.ts`, default: `./dist/${key}.js` },
        require: { types: `./dist/${key}.d.cts`, default: `./dist/${key}.cjs` },
      });
    }
  });
});

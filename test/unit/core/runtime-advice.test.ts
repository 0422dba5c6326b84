import { describe, expect, it } from 'vitest';
import { createInstanceImages } from '../../../src';
import { adviseOnRuntime, youngGenerationAdvice, type RuntimeFacts } from '../../../src/util/runtime-advice';

const facts = (nodeVersion: string, execArgv: readonly string[] = [], nodeOptions?: string): RuntimeFacts => ({
  nodeVersion,
  execArgv,
  nodeOptions,
});

describe('youngGenerationAdvice', () => {
  it('advises Node 24 and later to cap the young generation, and no earlier Node', () => {
    for (const version of ['24.0.0', '24.22.3', '25.1.0']) {
      const advice = youngGenerationAdvice(facts(version));
      expect(advice).toContain('--max-semi-space-size=1');
      expect(advice).toContain(`Node ${version.split('.')[0]!}`);
    }
    for (const version of ['20.20.0', '22.23.5', '23.11.0']) expect(youngGenerationAdvice(facts(version))).toBeNull();
  });

  it('is silent when the flag is on the command line or in NODE_OPTIONS, in either spelling', () => {
    expect(youngGenerationAdvice(facts('24.1.0', ['--max-semi-space-size=1']))).toBeNull();
    expect(youngGenerationAdvice(facts('24.1.0', ['--max_semi_space_size', '2']))).toBeNull();
    expect(youngGenerationAdvice(facts('24.1.0', [], '--enable-source-maps  --max-semi-space-size=2'))).toBeNull();
    // A flag that only starts alike is not it.
    expect(youngGenerationAdvice(facts('24.1.0', ['--max-semi-space-size-x=1'], '--max-old-space-size=4096'))).not.toBeNull();
  });

  it('is logged with warn once per logger, by the SDK when it starts, as the running Node calls for', async () => {
    const expected = youngGenerationAdvice(facts(process.versions.node, process.execArgv, process.env.NODE_OPTIONS));
    const warnings: string[] = [];
    const logger = { debug: () => undefined, info: () => undefined, warn: (m: string) => warnings.push(m), error: () => undefined };
    const hostDirectory = { getInstance: async () => null, getHypervisor: async () => null };
    const images = createInstanceImages({ logger, hostDirectory });
    await images.close();
    adviseOnRuntime(logger);
    expect(warnings.filter((m) => m.includes('--max-semi-space-size'))).toEqual(expected ? [expected] : []);
  });

  it('tells each logger once, whatever the Node the tests run on', () => {
    const node24 = facts('24.22.3');
    const first: string[] = [];
    const second: string[] = [];
    const one = { warn: (m: string) => first.push(m) };
    adviseOnRuntime(one, node24);
    adviseOnRuntime(one, node24);
    adviseOnRuntime({ warn: (m: string) => second.push(m) }, node24);
    expect(first).toEqual([youngGenerationAdvice(node24)]);
    expect(second).toHaveLength(1);
    const capped: string[] = [];
    adviseOnRuntime({ warn: (m: string) => capped.push(m) }, { ...node24, nodeOptions: '--max-semi-space-size=1' });
    expect(capped).toEqual([]);
  });
});

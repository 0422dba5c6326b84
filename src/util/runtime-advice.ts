/**
 * Advice about the Node.js runtime the SDK runs in, logged with `warn` when the SDK is created
 * (once per logger).
 *
 * On Node 24 a process whose heap is large spends several times the CPU on every GiB a capture
 * reads or a deploy writes over SSH, in full garbage collections that its
 * short-lived buffers start ("external memory pressure"): Node 24 lets the young generation grow so
 * large that its scavenges, which would free those buffers, come too late. A young generation
 * capped with `--max-semi-space-size=1` avoids them: measured with `npm run bench -- heap-read`,
 * 0.11× the CPU of a read and 0.08× of a write with a heap of 1,000 MiB. On Node 20 the cap cost
 * 1.17–1.23× the CPU instead (Node 22's young generation stays small by itself too), so it is
 * advised on Node 24 and later only. See docs/operations.md, "The panel's heap while it captures".
 * @module
 */

/** The V8 flag that caps the young generation, in either spelling V8 accepts. */
const SEMI_SPACE_FLAG = /^--max[-_]semi[-_]space[-_]size(=|$)/;

/** What the advice looks at: the Node version (`process.versions.node`), its command-line flags (`process.execArgv`) and `NODE_OPTIONS`. */
export interface RuntimeFacts {
  nodeVersion: string;
  execArgv: readonly string[];
  nodeOptions: string | undefined;
}

/** This process's {@link RuntimeFacts}. */
function thisProcess(): RuntimeFacts {
  return { nodeVersion: process.versions.node, execArgv: process.execArgv, nodeOptions: process.env.NODE_OPTIONS };
}

/**
 * The advice for a process with these facts, or null when there is none: on Node 24 and later,
 * when neither its flags nor `NODE_OPTIONS` cap the young generation.
 */
export function youngGenerationAdvice({ nodeVersion, execArgv, nodeOptions }: RuntimeFacts): string | null {
  const major = Number.parseInt(nodeVersion, 10);
  if (!(major >= 24)) return null;
  const flags = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  if (flags.some((flag) => SEMI_SPACE_FLAG.test(flag))) return null;
  return (
    `Node ${major}: start this process with --max-semi-space-size=1 (NODE_OPTIONS takes it). Without it, ` +
    'captures and deploys in a process with a large heap spend several times the CPU per GiB in full garbage ' +
    `collections (docs/operations.md, "The panel's heap while it captures").`
  );
}

/** The loggers already advised: a host that creates the SDK more than once is told once per logger. */
const advised = new WeakSet<object>();

/** Logs {@link youngGenerationAdvice} for this process (or `facts`) with `warn`, once per logger. */
export function adviseOnRuntime(logger: { warn(message: string): void }, facts: RuntimeFacts = thisProcess()): void {
  if (advised.has(logger)) return;
  advised.add(logger);
  const advice = youngGenerationAdvice(facts);
  if (advice) logger.warn(advice);
}

/**
 * OpenTelemetry through `@opentelemetry/api` only: a no-op until the host installs an SDK (or
 * passes its own providers). A span per task, a child span per driver step, and metrics of
 * durations, bytes, failures, queue depth and running tasks.
 *
 * Attributes carry ids, types, byte counts and error codes only: never names a customer chose,
 * messages, paths or secrets.
 * @module
 */
import {
  context,
  metrics,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Meter,
  type MeterProvider,
  type Span,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import type { Task } from './model/task';

/** The instrumentation scope of every span and instrument. */
export const TELEMETRY_SCOPE = 'instance-images';

/** Attribute names used on spans and metrics. */
export const TelemetryAttributes = {
  taskId: 'instance_images.task.id',
  taskType: 'instance_images.task.type',
  hypervisorId: 'instance_images.hypervisor.id',
  storageId: 'instance_images.storage.id',
  step: 'instance_images.step',
  bytes: 'instance_images.bytes',
  outcome: 'instance_images.outcome',
  errorCode: 'instance_images.error.code',
} as const;

/** Metric names. */
export const TelemetryMetrics = {
  taskDuration: 'instance_images.task.duration',
  captureDuration: 'instance_images.capture.duration',
  deployDuration: 'instance_images.deploy.duration',
  bytesTransferred: 'instance_images.bytes.transferred',
  failures: 'instance_images.task.failures',
  queueDepth: 'instance_images.queue.depth',
  runningTasks: 'instance_images.tasks.running',
} as const;

/** Where spans and metrics go. Both default to the global providers of `@opentelemetry/api`. */
export interface TelemetryOptions {
  /** @default trace.getTracerProvider() (a no-op until an SDK registers one) */
  tracerProvider?: TracerProvider;
  /** @default metrics.getMeterProvider() (a no-op until an SDK registers one) */
  meterProvider?: MeterProvider;
}

/** How a task ended, for its span and metrics. */
export type TaskTelemetryOutcome = { ok: true } | { ok: false; code: string };

/** The telemetry of one running task. */
export interface TaskTelemetry {
  /** The context in which the task's work runs (its span active), so host instrumentation nests under it. */
  readonly context: Context;
  /** A progress report: a new step name ends the previous step's span and starts one. */
  step(step: string, bytesDone?: number | null): void;
  /** Adds ids known only once the work runs (e.g. the storage). */
  annotate(attributes: { storageId?: string }): void;
  /** Ends the step and task spans and records the metrics. Idempotent. */
  end(outcome: TaskTelemetryOutcome): void;
}

/** The SDK's telemetry. @internal */
export interface Telemetry {
  /** Starts the telemetry of a task that begins running. */
  task(task: Pick<Task, 'id' | 'type' | 'hypervisorId'>): TaskTelemetry;
}

/** Builds the telemetry of one SDK instance; `queueDepth` counts the tasks this process holds queued. @internal */
export function createTelemetry(options: TelemetryOptions, queueDepth: () => number): Telemetry {
  const tracer: Tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(TELEMETRY_SCOPE);
  const meter: Meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(TELEMETRY_SCOPE);
  const durations = {
    task: meter.createHistogram(TelemetryMetrics.taskDuration, { unit: 's', description: 'Duration of tasks by type and outcome' }),
    capture: meter.createHistogram(TelemetryMetrics.captureDuration, { unit: 's', description: 'Duration of captures' }),
    deploy: meter.createHistogram(TelemetryMetrics.deployDuration, { unit: 's', description: 'Duration of deploys' }),
  };
  const bytes = meter.createCounter(TelemetryMetrics.bytesTransferred, {
    unit: 'By',
    description: 'Bytes moved by task steps (copied, uploaded, downloaded)',
  });
  const failures = meter.createCounter(TelemetryMetrics.failures, { description: 'Failed tasks by type and error code' });
  let running = 0;
  meter
    .createObservableUpDownCounter(TelemetryMetrics.queueDepth, { description: 'Tasks queued in this process' })
    .addCallback((result) => result.observe(queueDepth()));
  meter
    .createObservableUpDownCounter(TelemetryMetrics.runningTasks, { description: 'Tasks running in this process' })
    .addCallback((result) => result.observe(running));

  return {
    task(task) {
      running += 1;
      const base: Attributes = { [TelemetryAttributes.taskType]: task.type };
      if (task.hypervisorId !== null) base[TelemetryAttributes.hypervisorId] = task.hypervisorId;
      const startedAt = performance.now();
      const span = tracer.startSpan(`instance-images ${task.type}`, { attributes: { ...base, [TelemetryAttributes.taskId]: task.id } });
      const taskContext = trace.setSpan(context.active(), span);
      let current: { name: string; span: Span; bytes: number } | null = null;
      let ended = false;
      const endStep = () => {
        if (!current) return;
        current.span.setAttribute(TelemetryAttributes.bytes, current.bytes);
        current.span.end();
        if (current.bytes > 0) bytes.add(current.bytes, { ...base, [TelemetryAttributes.step]: current.name });
        current = null;
      };
      return {
        context: taskContext,
        step(name, bytesDone) {
          if (ended) return;
          if (current?.name !== name) {
            endStep();
            const stepSpan = tracer.startSpan(name, { attributes: { ...base, [TelemetryAttributes.step]: name } }, taskContext);
            current = { name, span: stepSpan, bytes: 0 };
          }
          if (typeof bytesDone === 'number' && Number.isFinite(bytesDone) && bytesDone > current.bytes) current.bytes = bytesDone;
        },
        annotate(attributes) {
          if (!ended && attributes.storageId !== undefined) span.setAttribute(TelemetryAttributes.storageId, attributes.storageId);
        },
        end(outcome) {
          if (ended) return;
          ended = true;
          running -= 1;
          endStep();
          const seconds = (performance.now() - startedAt) / 1000;
          const label = outcome.ok ? 'completed' : outcome.code;
          span.setAttribute(TelemetryAttributes.outcome, label);
          if (outcome.ok) span.setStatus({ code: SpanStatusCode.OK });
          else {
            span.setAttribute(TelemetryAttributes.errorCode, outcome.code);
            span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.code });
          }
          span.end();
          const attributes = { ...base, [TelemetryAttributes.outcome]: label };
          durations.task.record(seconds, attributes);
          if (task.type === 'capture') durations.capture.record(seconds, attributes);
          if (task.type === 'deploy') durations.deploy.record(seconds, attributes);
          if (!outcome.ok) failures.add(1, { ...base, [TelemetryAttributes.errorCode]: outcome.code });
        },
      };
    },
  };
}

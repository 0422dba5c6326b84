/**
 * Telemetry through @opentelemetry/api, observed with the SDK's in-memory exporters: a span per
 * task with its driver steps as children, metrics of durations, bytes and failures, and no
 * customer-chosen names or secrets in any attribute.
 */
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { TelemetryAttributes, TelemetryMetrics } from '../../../src';
import { alice, setup } from './setup';

function providers() {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    spans,
    tracerProvider,
    meterProvider,
    async metrics() {
      await reader.forceFlush();
      const points = new Map<string, Array<{ attributes: Record<string, unknown>; value: unknown }>>();
      for (const batch of metricExporter.getMetrics())
        for (const scope of batch.scopeMetrics)
          for (const metric of scope.metrics)
            points.set(
              metric.descriptor.name,
              metric.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })),
            );
      return points;
    },
  };
}

const attributesOf = (spans: ReadableSpan[]) => spans.flatMap((s) => Object.values(s.attributes).map(String));

describe('telemetry', () => {
  it('records a span per task with its driver steps as children, and capture metrics', async () => {
    const otel = providers();
    const h = await setup({ telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider } });
    const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'secret-customer-name' });
    await h.ii.idle();
    const spans = otel.spans.getFinishedSpans();
    const root = spans.find((s) => s.name === 'instance-images capture');
    expect(root).toBeDefined();
    expect(root!.attributes).toMatchObject({
      [TelemetryAttributes.taskType]: 'capture',
      [TelemetryAttributes.taskId]: task.id,
      [TelemetryAttributes.hypervisorId]: 'hv-1',
      [TelemetryAttributes.storageId]: h.storageId,
      [TelemetryAttributes.outcome]: 'completed',
    });
    const children = spans.filter((s) => s.parentSpanContext?.spanId === root!.spanContext().spanId);
    expect(children.map((s) => s.name)).toEqual(expect.arrayContaining(['capturing', 'copying', 'uploading']));
    const uploading = children.find((s) => s.name === 'uploading')!;
    expect(uploading.attributes[TelemetryAttributes.bytes]).toBe(h.world.domains.get('dom-web-1')!.disk.length);
    // Never a name the customer chose, nor the storage's secret.
    const values = attributesOf(spans).join('\n');
    expect(values).not.toContain('secret-customer-name');
    expect(values).not.toContain('top-secret-key');
    expect(values).not.toContain(image.name);

    const metrics = await otel.metrics();
    expect(metrics.get(TelemetryMetrics.captureDuration)?.[0]?.attributes).toMatchObject({
      [TelemetryAttributes.taskType]: 'capture',
      [TelemetryAttributes.outcome]: 'completed',
    });
    const bytes = metrics.get(TelemetryMetrics.bytesTransferred) ?? [];
    expect(bytes.some((p) => p.attributes[TelemetryAttributes.step] === 'uploading' && (p.value as number) > 0)).toBe(true);
    expect(metrics.get(TelemetryMetrics.runningTasks)?.[0]?.value).toBe(0);
    expect(metrics.get(TelemetryMetrics.queueDepth)?.[0]?.value).toBe(0);
    await h.ii.close();
  });

  it('marks a failed task with its error code on the span and in the failure counter', async () => {
    const otel = providers();
    const h = await setup({ telemetry: { tracerProvider: otel.tracerProvider, meterProvider: otel.meterProvider } });
    h.world.failNextCapture = 'CAPTURE_FAILED';
    await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' });
    await h.ii.idle();
    const root = otel.spans.getFinishedSpans().find((s) => s.name === 'instance-images capture')!;
    expect(root.status).toMatchObject({ code: 2, message: 'CAPTURE_FAILED' });
    expect(root.attributes[TelemetryAttributes.errorCode]).toBe('CAPTURE_FAILED');
    const failures = (await otel.metrics()).get(TelemetryMetrics.failures) ?? [];
    expect(failures).toEqual([
      { attributes: expect.objectContaining({ [TelemetryAttributes.errorCode]: 'CAPTURE_FAILED' }) as unknown, value: 1 },
    ]);
    await h.ii.close();
  });

  it('is a no-op without an SDK (the global providers)', async () => {
    const h = await setup();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' });
    await h.ii.idle();
    expect((await h.ii.images.getImage(alice, image.id)).status).toBe('available');
    await h.ii.close();
  });
});

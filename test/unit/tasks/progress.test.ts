/**
 * The progress model: documented steps per task type, a percentage that never decreases across the
 * whole task (verification included), and a completed task that shows its final bytes (issue 13).
 */
import { describe, expect, it } from 'vitest';
import type { TaskProgress, TaskType } from '../../../src/model/task';
import { createProgressTracker, TASK_STEPS, type ProgressReport } from '../../../src/tasks/progress';

function play(type: TaskType, reports: ProgressReport[]): TaskProgress[] {
  const tracker = createProgressTracker(type);
  return [...reports.map((r) => tracker.report(r)), tracker.complete()];
}

function expectMonotone(seen: TaskProgress[]): void {
  for (let i = 1; i < seen.length; i++)
    expect(seen[i]!.percent, `report ${i}: ${JSON.stringify(seen[i])}`).toBeGreaterThanOrEqual(seen[i - 1]!.percent);
}

describe('the progress model', () => {
  it('the steps of every task type share exactly 100 %', () => {
    for (const [type, steps] of Object.entries(TASK_STEPS)) {
      expect(
        steps.reduce((sum, s) => sum + s.weight, 0),
        type,
      ).toBe(100);
      expect(new Set(steps.map((s) => s.step)).size, type).toBe(steps.length);
    }
  });

  it('the capture sequence of the issue never goes backwards and ends at 100 % with the final bytes', () => {
    // capturing 0/null → copy 0/17113088 → verify 0/null → done 17170432/17170432 → verifying 0/null → completed
    const seen = play('capture', [
      { step: 'capturing' },
      { step: 'copy', bytesDone: 0, bytesTotal: 17113088 },
      { step: 'copy', bytesDone: 8556544, bytesTotal: 17113088 },
      { step: 'copy', bytesDone: 17113088, bytesTotal: 17113088 },
      { step: 'verify', bytesDone: 0, bytesTotal: null },
      { step: 'done', bytesDone: 17170432, bytesTotal: 17170432 },
      { step: 'verifying' },
    ]);
    expectMonotone(seen);
    expect(seen.map((p) => p.step)).toEqual([
      'capturing',
      'capturing',
      'capturing',
      'capturing',
      'verifying',
      'verifying',
      'verifying',
      'completed',
    ]);
    expect(seen.map((p) => p.percent)).toEqual([0, 0, 35, 70, 70, 99, 99, 100]);
    // A step without byte counts keeps the counts shown before; the completed task shows the final bytes.
    expect(seen[4]).toMatchObject({ bytesDone: 17113088, bytesTotal: 17113088 });
    expect(seen.at(-1)).toEqual({ step: 'completed', percent: 100, bytesDone: 17170432, bytesTotal: 17170432 });
  });

  it('an object-storage capture: the upload and the transfer count in verifying, bytes never go back', () => {
    const seen = play('capture', [
      { step: 'capturing' },
      { step: 'convert', bytesDone: 50, bytesTotal: 100 },
      { step: 'verify', bytesDone: 0, bytesTotal: null },
      { step: 'transfer', bytesDone: 60, bytesTotal: 120 },
      { step: 'uploading', bytesDone: 30, bytesTotal: 120 },
      { step: 'transfer', bytesDone: 120, bytesTotal: 120 },
    ]);
    expectMonotone(seen);
    expect(seen[4]).toMatchObject({ step: 'verifying', bytesDone: 60, bytesTotal: 120 });
    expect(seen.at(-1)).toEqual({ step: 'completed', percent: 100, bytesDone: 120, bytesTotal: 120 });
  });

  it('a deploy from a path skips receiving; late reports of an earlier step and unknown steps never move it back', () => {
    const seen = play('deploy', [
      { step: 'convert', bytesDone: 0, bytesTotal: 1000 },
      { step: 'convert', bytesDone: 500, bytesTotal: 1000 },
      { step: 'verify', bytesDone: 0, bytesTotal: null },
      { step: 'convert', bytesDone: 100, bytesTotal: 1000 },
      { step: 'something-new', bytesDone: 0, bytesTotal: null },
      { step: 'done', bytesDone: 4096, bytesTotal: 4096 },
    ]);
    expectMonotone(seen);
    expect(seen.map((p) => p.step)).toEqual(['converting', 'converting', 'verifying', 'verifying', 'verifying', 'verifying', 'completed']);
    expect(seen[1]!.percent).toBe(52);
    expect(seen.at(-1)).toEqual({ step: 'completed', percent: 100, bytesDone: 4096, bytesTotal: 4096 });
  });

  it('never shows 100 % before completion, nor an undocumented step name', () => {
    const tracker = createProgressTracker('iso-upload');
    expect(tracker.report({ step: 'driver-internal', bytesDone: 5, bytesTotal: 10 }).step).toBe('starting');
    expect(tracker.report({ step: 'uploading', bytesDone: 10, bytesTotal: 10 })).toEqual({
      step: 'uploading',
      percent: 99,
      bytesDone: 10,
      bytesTotal: 10,
    });
    expect(tracker.report({ step: 'uploading', bytesDone: 3, bytesTotal: 10 }).percent).toBe(99);
    expect(tracker.complete().percent).toBe(100);
  });

  it('a task without bytes completes with 0 of unknown bytes', () => {
    expect(play('delete', [{ step: 'waiting for deploys' }, { step: 'removing file' }]).map((p) => [p.step, p.percent])).toEqual([
      ['waiting for deploys', 0],
      ['removing file', 10],
      ['completed', 100],
    ]);
    expect(createProgressTracker('delete').complete()).toEqual({ step: 'completed', percent: 100, bytesDone: 0, bytesTotal: null });
  });
});

/**
 * Migration 3: tasks get their worker and incarnation columns, and progress recorded before it
 * gets a percentage (100 for completed tasks, else 0).
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSqliteRepositories, migrateSqlite, sqliteMigrations } from '../../../adapters/sqlite';

describe('sqlite: tasks of a database before migration 3', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'ii-sqlite-tasks-'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  it('read back with no worker and a percentage that matches their status', async () => {
    const file = join(directory, 'v2.db');
    const v2 = new Database(file);
    migrateSqlite(v2, sqliteMigrations.slice(0, 2));
    const insert = v2.prepare(
      `INSERT INTO ii_tasks (id, type, subject_kind, subject_id, account_id, hypervisor_id, status, progress, error_code, error_message, attempts, heartbeat_at, created_at, updated_at, started_at, finished_at)
       VALUES (?, 'capture', 'image', 'img-1', NULL, NULL, ?, ?, NULL, NULL, 1, NULL, 1000, 2000, NULL, NULL)`,
    );
    insert.run('task-done', 'completed', JSON.stringify({ step: 'completed', bytesDone: 0, bytesTotal: null }));
    insert.run('task-running', 'running', JSON.stringify({ step: 'copy', bytesDone: 5, bytesTotal: 10 }));
    v2.close();
    const repositories = createSqliteRepositories({ filename: file });
    expect(await repositories.tasks.get('task-done')).toMatchObject({
      workerId: null,
      incarnationId: null,
      progress: { step: 'completed', percent: 100, bytesDone: 0, bytesTotal: null },
    });
    expect(await repositories.tasks.get('task-running')).toMatchObject({
      workerId: null,
      incarnationId: null,
      progress: { step: 'copy', percent: 0, bytesDone: 5, bytesTotal: 10 },
    });
    const updated = await repositories.tasks.transition(
      'task-running',
      ['running'],
      'running',
      { workerId: 'panel-1', incarnationId: 'run-2' },
      new Date(3000),
    );
    expect(updated).toMatchObject({ workerId: 'panel-1', incarnationId: 'run-2' });
    await repositories.close();
  });
});

/**
 * Type tests of the public API (checked by `npm run typecheck`, which includes test files) plus a
 * runtime check that the entry points export what the docs promise.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as root from '../../../src';
import * as schemas from '../../../src/schemas';
import * as testing from '../../../src/testing';
import type {
  Actor,
  ErrorCode,
  Image,
  ImageStatus,
  ImageWithTask,
  InstanceImages,
  InstanceImagesEvents,
  Page,
  Repositories,
  Task,
  UsageReport,
} from '../../../src';

describe('public API', () => {
  it('has the documented types', () => {
    expectTypeOf<InstanceImages['images']['createImage']>().parameters.toEqualTypeOf<
      [
        Actor,
        {
          instanceId: string;
          name: string;
          description?: string | undefined;
          format?: 'qcow2' | 'raw' | undefined;
          compress?: boolean | undefined;
        },
      ]
    >();
    expectTypeOf<InstanceImages['images']['createImage']>().returns.toEqualTypeOf<Promise<ImageWithTask>>();
    expectTypeOf<InstanceImages['images']['listImages']>().returns.toEqualTypeOf<Promise<Page<Image>>>();
    expectTypeOf<InstanceImages['images']['getTask']>().returns.toEqualTypeOf<Promise<Task>>();
    expectTypeOf<InstanceImages['settings']['usageReport']>().returns.toEqualTypeOf<Promise<UsageReport>>();
    expectTypeOf<ImageStatus>().toEqualTypeOf<'creating' | 'available' | 'error' | 'deleting' | 'deleted'>();
    expectTypeOf<'FEATURE_DISABLED' | 'IMAGE_LIMIT_REACHED' | 'STORAGE_FULL' | 'HOST_KEY_MISMATCH'>().toExtend<ErrorCode>();
    expectTypeOf<InstanceImagesEvents['image.available']>().toEqualTypeOf<{ image: Image }>();
    expectTypeOf<InstanceImagesEvents['task.progress']>().toEqualTypeOf<{ task: Task }>();
    expectTypeOf<Actor>().toEqualTypeOf<{ kind: 'customer'; accountId: string; userId?: string } | { kind: 'admin'; userId?: string }>();
    expectTypeOf(root.createMemoryRepositories).returns.toEqualTypeOf<Repositories>();
    expectTypeOf(testing.testRepositories).parameter(1).toHaveProperty('create');
  });

  it('exports the entry points the docs name', () => {
    for (const name of [
      'createInstanceImages',
      'InstanceImagesError',
      'createMemoryRepositories',
      'createTaskQueue',
      'assertTransition',
      'calculateCharges',
      'buildUsageReport',
    ]) {
      expect(typeof (root as Record<string, unknown>)[name], name).toBe('function');
    }
    for (const name of ['testRepositories', 'testStorageDriver', 'makeImage']) {
      expect(typeof (testing as Record<string, unknown>)[name], name).toBe('function');
    }
  });

  it('keeps internals off the root and the zod schemas on their own subpath', () => {
    for (const name of [
      'Rational',
      'wrapStorageDriver',
      'createStorageRegistry',
      'normalizeStorageKey',
      'checkActor',
      'parseOrThrow',
      'zodIssues',
      'notFound',
      'openUsage',
      'ImageService',
      'CatalogService',
      'StorageService',
      'SettingsService',
      'AccountService',
      'MemoryImageRepository',
      'createEmitter',
    ]) {
      expect(name in root, name).toBe(false);
    }
    const rootSchemas = Object.keys(root).filter((name) => name.endsWith('Schema'));
    expect(rootSchemas).toEqual([]);
    for (const name of [
      'ImageSchema',
      'TaskSchema',
      'CreateImageInputSchema',
      'DeployInputSchema',
      'InstanceImagesOptionsSchema',
      'ActorSchema',
    ]) {
      expect(typeof (schemas as Record<string, unknown>)[name], name).toBe('object');
    }
  });
});

/**
 * The complete fixtures set every field of every record to a value other than its default, and
 * the round-trip cases fail for a mapper that drops any one of them (planted below, field by field).
 */
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { createMemoryRepositories, type Repositories } from '../../../src';
import { ImageSchema } from '../../../src/model/image';
import { ImageStorageSchema } from '../../../src/model/image-storage';
import { IsoSchema } from '../../../src/model/iso';
import { MediaGroupSchema } from '../../../src/model/media-group';
import { LocationSettingsSchema } from '../../../src/model/settings';
import { TaskSchema } from '../../../src/model/task';
import { UsageIntervalSchema } from '../../../src/model/usage-interval';
import {
  makeCompleteImage,
  makeCompleteIso,
  makeCompleteLocationSettings,
  makeCompleteMediaGroup,
  makeCompleteStorage,
  makeCompleteTask,
  makeCompleteUsageInterval,
  runRepositoryCase,
} from '../../../src/testing';

interface Entity {
  schema: z.ZodObject;
  record: object;
  repository: keyof Omit<Repositories, 'close'>;
  caseName: string;
}

const entities: Record<string, Entity> = {
  image: {
    schema: ImageSchema,
    record: makeCompleteImage(),
    repository: 'images',
    caseName: 'images: every field round-trips through insert, get, list, update and transition',
  },
  storage: {
    schema: ImageStorageSchema,
    record: makeCompleteStorage(),
    repository: 'storages',
    caseName: 'storages and bindings: every field round-trips',
  },
  'media group': {
    schema: MediaGroupSchema,
    record: makeCompleteMediaGroup(),
    repository: 'mediaGroups',
    caseName: 'media groups: every field round-trips',
  },
  iso: { schema: IsoSchema, record: makeCompleteIso(), repository: 'isos', caseName: 'isos: every field round-trips' },
  task: {
    schema: TaskSchema,
    record: makeCompleteTask(),
    repository: 'tasks',
    caseName: 'tasks: every field round-trips through insert, get, list, update and transition',
  },
  'usage interval': {
    schema: UsageIntervalSchema,
    record: makeCompleteUsageInterval(),
    repository: 'usage',
    caseName: 'usage: every field round-trips, closed and open',
  },
  'location settings': {
    schema: LocationSettingsSchema,
    record: makeCompleteLocationSettings(),
    repository: 'settings',
    caseName: 'settings: every field round-trips',
  },
};

/** Removes `field` from every record in a repository result (a record, a list, a page or null). */
function strip(value: unknown, field: string): unknown {
  if (Array.isArray(value)) return value.map((item) => strip(item, field));
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    if ('items' in value && Array.isArray(value.items)) return { ...value, items: strip(value.items, field) };
    const { [field]: _dropped, ...rest } = value as Record<string, unknown>;
    return rest;
  }
  return value;
}

/** Memory repositories whose `repository` behaves like a host mapper that forgot `field`. */
function droppingMapper(repository: Entity['repository'], field: string): Repositories {
  const repos = createMemoryRepositories();
  const target = repos[repository] as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const proxy = new Proxy(target, {
    get(object, key, receiver) {
      const member = Reflect.get(object, key, receiver) as unknown;
      if (typeof member !== 'function') return member;
      return async (...args: unknown[]) => strip(await (member as (...a: unknown[]) => Promise<unknown>).apply(object, args), field);
    },
  });
  return { ...repos, [repository]: proxy };
}

describe('complete fixtures', () => {
  for (const [name, entity] of Object.entries(entities)) {
    it(`a complete ${name} sets every field, each optional one to a value other than its default`, () => {
      const record = entity.record as Record<string, unknown>;
      for (const [field, schema] of Object.entries(entity.schema.shape as Record<string, z.ZodType>)) {
        expect(record, `${name}.${field} is missing from the complete fixture`).toHaveProperty(field);
        expect(record[field], `${name}.${field}`).not.toBeNull();
        const absent = schema.safeParse(undefined);
        if (absent.success) expect(record[field], `${name}.${field} equals its default`).not.toEqual(absent.data);
      }
      expect(entity.schema.parse(record)).toEqual(record);
    });
  }
});

describe('the round-trip cases catch a mapper that drops a field', () => {
  for (const [name, entity] of Object.entries(entities)) {
    it(`of every field of a ${name}`, async () => {
      await runRepositoryCase(entity.caseName, createMemoryRepositories());
      const missed: string[] = [];
      for (const field of Object.keys(entity.schema.shape)) {
        const caught = await runRepositoryCase(entity.caseName, droppingMapper(entity.repository, field)).then(
          () => false,
          () => true,
        );
        if (!caught) missed.push(field);
      }
      expect(missed, `fields whose loss the ${entity.caseName} case does not notice`).toEqual([]);
    });
  }
});

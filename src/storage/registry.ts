/**
 * The storage driver registry: drivers register by name with a zod schema for their config.
 * The core registers none: the host passes the built-ins (`builtinStorageDrivers` from
 * `instance-images/drivers/storage`) and/or its own to `createInstanceImages`.
 * @module
 */
import type { z } from 'zod';
import { InstanceImagesError, validationFailed, type FieldIssue } from '../errors';
import type { StorageDriver, StorageDriverContext, StorageDriverFactory } from '../ports/storage-driver';

/** What a masked secret is replaced with. */
export const MASKED_SECRET = '********';

const DRIVER_NAME = /^[a-z][a-z0-9-]{0,49}$/;

/** Drivers by name. */
export interface StorageRegistry {
  /**
   * Adds a driver factory.
   * @throws VALIDATION_FAILED for a bad name; CONFLICT when the name is taken (unless `replace`).
   */
  register<Options>(factory: StorageDriverFactory<Options>, options?: { replace?: boolean }): void;
  /** Whether a driver of that name is registered. */
  has(name: string): boolean;
  /**
   * The factory registered under `name`.
   * @throws VALIDATION_FAILED (field `driver`) when no such driver is registered.
   */
  get(name: string): StorageDriverFactory;
  /** Names of all registered drivers, sorted. */
  names(): string[];
  /**
   * Validates a storage's config with the driver's schema and returns the parsed options.
   * @throws VALIDATION_FAILED naming each offending field as `config.<path>` (an unknown key, which
   *   a strict schema refuses, as `config.<key>`); never echoes values.
   */
  validateConfig(name: string, config: unknown): unknown;
  /**
   * A copy of `config` with the driver's secret fields, and any key its schema does not know (a
   * config stored before the schema refused unknown keys), replaced by {@link MASKED_SECRET}.
   */
  maskSecrets(name: string, config: Record<string, unknown>): Record<string, unknown>;
  /** Validates `config` and creates a (raw, unwrapped) driver instance. */
  createDriver(name: string, config: unknown, context?: StorageDriverContext): StorageDriver;
}

function maskPath(target: Record<string, unknown>, path: readonly string[]): void {
  const [head, ...rest] = path;
  if (head === undefined || !Object.prototype.hasOwnProperty.call(target, head)) return;
  if (rest.length === 0) {
    if (target[head] !== undefined && target[head] !== null && target[head] !== '') target[head] = MASKED_SECRET;
    return;
  }
  const child = target[head];
  if (child !== null && typeof child === 'object' && !Array.isArray(child)) {
    const copy = { ...(child as Record<string, unknown>) };
    target[head] = copy;
    maskPath(copy, rest);
  }
}

/** How a host registers a storage driver (part of every "no such driver" message). */
export const REGISTER_HINT =
  'pass its factory to createInstanceImages({ storageDrivers: [...] }), e.g. builtinStorageDrivers from "instance-images/drivers/storage" for local, nfs and s3';
/** Longest part of an unknown key's name that a message repeats. */
const KEY_NAME_MAX = 64;

/** An unknown key's name as a message can show it: printable, bounded. */
function printableKeyName(key: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is replaced
  const shown = key.slice(0, KEY_NAME_MAX).replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return key.length > KEY_NAME_MAX ? `${shown}...` : shown;
}

/**
 * The fields of a failed config validation, as `config.<path>`. An unknown key is named as its own
 * field. zod messages describe the expectation, never the received value, so secrets stay out.
 */
function configIssueFields(name: string, issues: readonly z.core.$ZodIssue[]): FieldIssue[] {
  return issues.flatMap((issue) => {
    const path = ['config', ...issue.path.map(String)];
    if (issue.code !== 'unrecognized_keys') return [{ path: path.join('.'), message: issue.message }];
    return issue.keys.map((key) => ({
      path: [...path, printableKeyName(key)].join('.'),
      message: `is not a setting of the ${name} storage driver`,
    }));
  });
}

/** The paths of the keys in `config` that the driver's schema does not know. */
function unknownKeyPaths(factory: StorageDriverFactory, config: Record<string, unknown>): string[][] {
  const result = factory.optionsSchema.safeParse(config);
  if (result.success) return [];
  return result.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys' ? issue.keys.map((key) => [...issue.path.map(String), key]) : [],
  );
}

/** Creates an empty registry; register built-ins with the drivers' exported factories. */
export function createStorageRegistry(): StorageRegistry {
  const factories = new Map<string, StorageDriverFactory>();

  const get = (name: string): StorageDriverFactory => {
    const factory = factories.get(name);
    if (!factory) {
      const known = [...factories.keys()].sort().join(', ') || 'none';
      throw validationFailed(
        [
          {
            path: 'driver',
            message: `no storage driver named ${JSON.stringify(name)} is registered (registered: ${known}); ${REGISTER_HINT}`,
          },
        ],
        'The storage',
      );
    }
    return factory;
  };

  const validateConfig = (name: string, config: unknown): unknown => {
    const factory = get(name);
    const result = factory.optionsSchema.safeParse(config);
    if (!result.success) throw validationFailed(configIssueFields(name, result.error.issues), `The ${name} storage config`);
    return result.data;
  };

  return {
    register(factory, options = {}) {
      if (!DRIVER_NAME.test(factory.name)) {
        throw validationFailed(
          [{ path: 'name', message: 'must be 1-50 lowercase letters, digits or dashes, starting with a letter' }],
          'The storage driver',
        );
      }
      if (factories.has(factory.name) && !options.replace) {
        throw new InstanceImagesError('CONFLICT', `A storage driver named ${JSON.stringify(factory.name)} is already registered`, {
          details: { name: factory.name },
        });
      }
      factories.set(factory.name, factory as StorageDriverFactory);
    },
    has: (name) => factories.has(name),
    get,
    names: () => [...factories.keys()].sort(),
    validateConfig,
    maskSecrets(name, config) {
      // A storage whose driver is not registered (any more): its secret fields are unknown, so every value is masked.
      if (!factories.has(name)) return Object.fromEntries(Object.keys(config).map((key) => [key, MASKED_SECRET]));
      const factory = get(name);
      const copy = { ...config };
      for (const field of factory.secretFields) maskPath(copy, field.split('.'));
      // Keys the schema does not know (stored before it was strict) may hold anything, secrets included.
      for (const path of unknownKeyPaths(factory, config)) maskPath(copy, path);
      return copy;
    },
    createDriver(name, config, context = {}) {
      const options = validateConfig(name, config);
      const factory = get(name);
      if (factory.needsHypervisor && (!context.hypervisor || !context.executor)) {
        throw new InstanceImagesError(
          'INVALID_STATE',
          `The ${name} storage driver acts on a hypervisor: give it the hypervisor and its executor`,
        );
      }
      return factory.create(options, context);
    },
  };
}

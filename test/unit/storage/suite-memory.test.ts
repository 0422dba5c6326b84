import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { testStorageDriver } from '../../../src/testing/storage-driver-suite';
import { createMemoryStorageDriver } from './memory-driver';

testStorageDriver(
  { describe, it, expect, beforeAll, afterAll, beforeEach },
  { name: 'in-memory fake', create: () => createMemoryStorageDriver({ free: 1e9 }) },
);

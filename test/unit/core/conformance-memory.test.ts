import { describe, it } from 'vitest';
import { createMemoryRepositories } from '../../../src/memory';
import { testRepositories } from '../../../src/testing';

testRepositories({ describe, it }, { name: 'memory', create: createMemoryRepositories });

import { describe, expect, it } from 'vitest';
import {
  IMAGE_LIFECYCLE,
  IMAGE_STATUSES,
  IMAGE_TRANSITIONS,
  INITIAL_IMAGE_STATUS,
  STOCK_IMAGE_TRANSITIONS,
  assertTransition,
  canTransition,
  sourcesOf,
} from '../../../src/lifecycle';
import { InstanceImagesError } from '../../../src/errors';

// The table of DESIGN.md, written out independently of the implementation.
const allowed = new Set([
  'creating>available',
  'creating>error',
  'available>deleting',
  'error>creating',
  'error>deleting',
  'deleting>deleted',
  'deleting>error',
]);

describe('image lifecycle', () => {
  for (const from of IMAGE_STATUSES) {
    for (const to of IMAGE_STATUSES) {
      const expected = allowed.has(`${from}>${to}`);
      it(`${from} -> ${to} is ${expected ? 'allowed' : 'forbidden'}`, () => {
        expect(canTransition(from, to)).toBe(expected);
        if (expected) expect(() => assertTransition(from, to)).not.toThrow();
        else {
          let thrown: unknown;
          try {
            assertTransition(from, to);
          } catch (error) {
            thrown = error;
          }
          expect(thrown).toBeInstanceOf(InstanceImagesError);
          expect((thrown as InstanceImagesError).code).toBe('INVALID_STATE');
        }
      });
    }
  }

  it('deleted is terminal and the table covers every status', () => {
    expect(IMAGE_TRANSITIONS.deleted).toEqual([]);
    expect(Object.keys(IMAGE_TRANSITIONS).sort()).toEqual([...IMAGE_STATUSES].sort());
  });

  it('sourcesOf lists the statuses that may reach a status', () => {
    expect(sourcesOf('deleting').sort()).toEqual(['available', 'error']);
    expect(sourcesOf('error').sort()).toEqual(['creating', 'deleting']);
    expect(sourcesOf('creating')).toEqual(['error']);
  });
});

// Stock OS images: born available, never captured or retried; deleting may skip `deleting` (the file is the operator's).
const stockAllowed = new Set([
  'available>deleting',
  'available>deleted',
  'error>deleting',
  'error>deleted',
  'deleting>deleted',
  'deleting>error',
]);

describe('stock image lifecycle', () => {
  it('states its own table, and the kind picks the table', () => {
    expect(IMAGE_LIFECYCLE).toEqual({ custom: IMAGE_TRANSITIONS, stock: STOCK_IMAGE_TRANSITIONS });
    expect(INITIAL_IMAGE_STATUS).toEqual({ custom: 'creating', stock: 'available' });
    for (const from of IMAGE_STATUSES) {
      for (const to of IMAGE_STATUSES) {
        expect(canTransition(from, to, 'stock'), `${from} -> ${to}`).toBe(stockAllowed.has(`${from}>${to}`));
      }
    }
    expect(() => assertTransition('error', 'creating', 'stock')).toThrow(/An OS image cannot go from error to creating/);
    expect(() => assertTransition('available', 'deleted')).toThrow(InstanceImagesError);
    expect(sourcesOf('deleted', 'stock').sort()).toEqual(['available', 'deleting', 'error']);
  });
});

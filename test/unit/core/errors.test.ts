import { describe, expect, it } from 'vitest';
import {
  ERROR_CODES,
  ERROR_MESSAGES,
  InstanceImagesError,
  isInstanceImagesError,
  notFound,
  toInstanceImagesError,
  validationFailed,
} from '../../../src/errors';

describe('errors', () => {
  it('uses the documented messages for the troubleshooting cases', () => {
    expect(new InstanceImagesError('FEATURE_DISABLED').message).toBe('Image feature is not enabled');
    expect(new InstanceImagesError('IMAGE_LIMIT_REACHED').message).toBe('Maximum image limit reached');
  });

  it('has every required code', () => {
    for (const code of [
      'FEATURE_DISABLED',
      'IMAGE_LIMIT_REACHED',
      'NOT_FOUND',
      'FORBIDDEN',
      'VALIDATION_FAILED',
      'INVALID_STATE',
      'NO_IMAGE_STORAGE',
      'STORAGE_FULL',
      'STORAGE_UNAVAILABLE',
      'HYPERVISOR_UNREACHABLE',
      'HOST_KEY_MISMATCH',
      'CAPTURE_FAILED',
      'CHECKSUM_MISMATCH',
      'DEPLOY_FAILED',
      'IN_USE',
      'CONFLICT',
    ]) {
      expect(ERROR_CODES).toContain(code);
      expect(ERROR_MESSAGES[code as keyof typeof ERROR_MESSAGES].length).toBeGreaterThan(0);
    }
  });

  it('keeps the cause and serializes without it', () => {
    const cause = new Error('socket hang up with secret=abc');
    const error = new InstanceImagesError('STORAGE_UNAVAILABLE', undefined, { cause, details: { storageId: 's1' } });
    expect(error.cause).toBe(cause);
    expect(JSON.stringify(error)).not.toContain('secret');
    expect(error.toJSON()).toEqual({
      code: 'STORAGE_UNAVAILABLE',
      message: 'The image storage is not reachable',
      fields: [],
      details: { storageId: 's1' },
    });
    expect(isInstanceImagesError(error, 'STORAGE_UNAVAILABLE')).toBe(true);
    expect(isInstanceImagesError(error, 'NOT_FOUND')).toBe(false);
    expect(isInstanceImagesError(cause)).toBe(false);
  });

  it('names fields of validation failures and wraps foreign errors', () => {
    const error = validationFailed([{ path: 'name', message: 'must not be empty' }]);
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.message).toContain('name: must not be empty');
    expect(error.fields).toEqual([{ path: 'name', message: 'must not be empty' }]);
    expect(notFound('Image', 'x').code).toBe('NOT_FOUND');
    const wrapped = toInstanceImagesError(new Error('boom'), 'CAPTURE_FAILED');
    expect(wrapped.code).toBe('CAPTURE_FAILED');
    expect(toInstanceImagesError(error, 'CAPTURE_FAILED')).toBe(error);
  });
});

import { isInstanceImagesError } from '../../src/errors';

/**
 * The error code a promise rejects with: `resolved` when it does not reject, and a text naming the
 * error when it is not an InstanceImagesError (so that an assertion on a code fails readably).
 */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return isInstanceImagesError(error) ? error.code : `not an InstanceImagesError: ${String(error)}`;
  }
  return 'resolved';
}

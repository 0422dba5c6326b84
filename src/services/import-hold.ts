/**
 * What an import holds against its account's byte cap while its file does not exist yet
 * (docs/images-that-move.md, "Byte caps and imports"). An upload holds its length from the moment
 * its image is recorded; every import then holds its decompressed bytes as they arrive (at least a
 * URL's announced Content-Length), growing the hold ahead of the bytes in steps, each step one
 * atomic `images.reserveBytes` against the cap; the stored file's size replaces the hold when the
 * image becomes available. An import that would pass the cap stops with IMAGE_LIMIT_REACHED.
 * @module
 */
import { InstanceImagesError } from '../errors';
import { imageCapBytes, type Image } from '../model/image';
import type { ServiceContext } from './context';
import { accountCaps, type AccountCaps } from './image-metadata';

/** How far ahead of the bytes received a hold grows (one repository write per step): 256 MiB. */
export const HOLD_STEP_BYTES = 256 * 1024 ** 2;

/** A custom import's hold on its account's byte cap. @internal */
export interface ByteHold {
  /** The size the server announced (Content-Length), held from the first bytes on. */
  announce(totalBytes: number | null): void;
  /** Called with the decompressed bytes so far before they are passed on; throws when the cap would be passed. */
  admit(bytes: number): Promise<void>;
}

/** The byte-cap error of an import that would pass the cap, with the figures. */
function holdRefused(maxBytes: number, bytes: number): InstanceImagesError {
  return new InstanceImagesError(
    'IMAGE_LIMIT_REACHED',
    `The account's image storage cap of ${maxBytes} bytes would be exceeded: the import needs at least ${bytes} bytes (received so far, or announced by the server) and stopped; nothing of it is kept. Delete an image or ask the operator for a larger cap, then import again`,
    { details: { limitBytes: maxBytes, imageBytes: bytes } },
  );
}

/** The hold of a custom image being imported, or null when its account has no byte cap. @internal */
export async function byteHoldOf(ctx: ServiceContext, image: Image): Promise<ByteHold | null> {
  if (image.accountId === null) return null;
  const settings = image.locationId === null ? null : await ctx.repos.settings.getLocation(image.locationId);
  const { maxBytes } = await accountCaps(ctx, image.accountId, settings);
  if (maxBytes === null) return null;
  let held = image.reservedBytes ?? 0;
  let announced = 0;
  // The smallest hold refused so far: near the cap, larger steps are not asked for again.
  let refused = Number.POSITIVE_INFINITY;
  return {
    announce(totalBytes) {
      if (totalBytes !== null) announced = Math.max(announced, totalBytes);
    },
    async admit(bytes) {
      if (bytes <= held) return;
      // At least the bytes so far and the announced size; ahead by a step, else a smaller one, else none.
      const least = Math.max(bytes, announced);
      const steps = [least + HOLD_STEP_BYTES, least + HOLD_STEP_BYTES / 16].filter((target) => target < refused);
      for (const target of [...steps, least]) {
        if (await ctx.repos.images.reserveBytes(image.id, target, maxBytes, ctx.now())) {
          held = target;
          return;
        }
        refused = Math.min(refused, target);
      }
      const current = await ctx.repos.images.get(image.id);
      if (current?.status !== 'creating') throw new InstanceImagesError('CANCELLED', 'The import was cancelled');
      throw holdRefused(maxBytes, least);
    },
  };
}

/**
 * Refuses early (not atomically: the atomic check comes when the image is recorded) an upload
 * whose declared length does not fit its account's byte cap beside the images it has.
 * @throws IMAGE_LIMIT_REACHED with `details.limitBytes` and `details.imageBytes`.
 */
export async function checkByteRoom(ctx: ServiceContext, accountId: string, caps: AccountCaps, bytes: number): Promise<void> {
  if (caps.maxBytes === null) return;
  let used = 0;
  let cursor: string | null = null;
  do {
    const page = await ctx.repos.images.list({ kind: 'custom', accountId }, { cursor, limit: 1000 });
    used += page.items.reduce((sum, each) => sum + imageCapBytes(each), 0);
    cursor = page.nextCursor;
  } while (cursor !== null);
  if (used + bytes > caps.maxBytes)
    throw new InstanceImagesError(
      'IMAGE_LIMIT_REACHED',
      `The account's image storage cap of ${caps.maxBytes} bytes would be exceeded (its images count ${used} bytes, this upload ${bytes}); delete an image or ask the operator for a larger cap`,
      { details: { limitBytes: caps.maxBytes, imageBytes: bytes } },
    );
}

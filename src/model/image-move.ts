import { z } from 'zod';
import { IdSchema } from './common';

/**
 * Statuses of an image share (Glance-like membership): `pending` until the recipient answers,
 * `accepted` (the recipient sees and deploys the image), `rejected` by the recipient, or `revoked`
 * by the owner (also when the image is deleted or changes owner). Only `pending` and `accepted`
 * are open; the others are terminal.
 */
export const ImageShareStatusSchema = z.enum(['pending', 'accepted', 'rejected', 'revoked']);
/** The status of an image share. */
export type ImageShareStatus = z.infer<typeof ImageShareStatusSchema>;

/** The open share statuses: at most one open share exists per image and recipient. */
export const OPEN_SHARE_STATUSES: readonly ImageShareStatus[] = ['pending', 'accepted'];

/** A share of a custom image with another account of the same panel. */
export const ImageShareSchema = z.object({
  /** Unguessable (random) id: knowing an image id never lets anyone guess its shares. */
  id: IdSchema,
  imageId: IdSchema,
  /** The owner who shared it (who keeps paying for the image). */
  ownerAccountId: IdSchema,
  /** The recipient. */
  accountId: IdSchema,
  status: ImageShareStatusSchema,
  createdAt: z.date(),
  updatedAt: z.date(),
  /** When the recipient accepted or rejected, or the owner revoked; null while pending. */
  decidedAt: z.date().nullable().default(null),
});
/** A share of a custom image with another account. */
export type ImageShare = z.infer<typeof ImageShareSchema>;

/**
 * Statuses of an ownership transfer: `pending` until the recipient answers or it expires;
 * `accepted` (the image is the recipient's), `rejected` by the recipient, `cancelled` by the giver
 * (also when the image is deleted), or `expired`. Only `pending` is open.
 */
export const ImageTransferStatusSchema = z.enum(['pending', 'accepted', 'rejected', 'cancelled', 'expired']);
/** The status of an ownership transfer. */
export type ImageTransferStatus = z.infer<typeof ImageTransferStatusSchema>;

/** An offer to move a custom image from one account to another. */
export const ImageTransferSchema = z.object({
  /** Unguessable (random) id. */
  id: IdSchema,
  imageId: IdSchema,
  /** The giver (the owner when the offer was made). */
  fromAccountId: IdSchema,
  /** The recipient. */
  toAccountId: IdSchema,
  status: ImageTransferStatusSchema,
  /** A pending offer can no longer be accepted from this instant. */
  expiresAt: z.date(),
  createdAt: z.date(),
  updatedAt: z.date(),
  /** When it was accepted, rejected, cancelled or found expired; null while pending. */
  decidedAt: z.date().nullable().default(null),
});
/** An ownership transfer of a custom image. */
export type ImageTransfer = z.infer<typeof ImageTransferSchema>;

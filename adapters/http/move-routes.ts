/**
 * Routes of images that move between accounts and storages: shares (image members), ownership
 * transfers and copies to other storages. Customer routes (admins may call them too); the services
 * scope every answer to the actor, and a foreign id answers 404 exactly like a missing one.
 * @module
 */
import { z } from 'zod';
import { ImageSchema } from '../../src/model/image';
import { ImageShareSchema, ImageTransferSchema } from '../../src/model/image-move';
import { CopyImageInputSchema } from '../../src/services/image-copies';
import { IncomingSharesQuerySchema, ShareImageInputSchema } from '../../src/services/image-sharing';
import { ListTransfersQuerySchema, OfferTransferInputSchema } from '../../src/services/image-transfers';
import { defineRoute, type RouteDefinition } from './route-types';
import { ImageWithTaskSchema, PageQuerySchema } from './schemas';

const page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });

/** GET /shared-images (customers: their own). */
export const SharedImagesQuerySchema = IncomingSharesQuerySchema.omit({ accountId: true });
/** GET /transfers (customers: their own). */
export const MyTransfersQuerySchema = ListTransfersQuerySchema.omit({ accountId: true });
/** A share and the shared image. */
export const SharedImageSchema = z.object({ share: ImageShareSchema, image: ImageSchema });
/** A page of shares. */
export const ImageSharePageSchema = page(ImageShareSchema);
/** A page of images shared with the caller. */
export const SharedImagePageSchema = page(SharedImageSchema);
/** A page of transfers. */
export const ImageTransferPageSchema = page(ImageTransferSchema);
/** An accepted transfer and the image, now the caller's. */
export const AcceptedTransferSchema = z.object({ transfer: ImageTransferSchema, image: ImageSchema });

/** Response components of these routes (for the OpenAPI document). */
export const MOVE_RESPONSE_COMPONENTS: Record<string, z.ZodType> = {
  ImageShare: ImageShareSchema,
  ImageSharePage: ImageSharePageSchema,
  SharedImage: SharedImageSchema,
  SharedImagePage: SharedImagePageSchema,
  ImageTransfer: ImageTransferSchema,
  ImageTransferPage: ImageTransferPageSchema,
  AcceptedTransfer: AcceptedTransferSchema,
};

/** Request components of these routes (for the OpenAPI document). */
export const MOVE_REQUEST_COMPONENTS: Record<string, z.ZodType> = {
  ShareImageInput: ShareImageInputSchema,
  OfferTransferInput: OfferTransferInputSchema,
  CopyImageInput: CopyImageInputSchema,
};

const id = (params: Record<string, string>, name: string): string => params[name] as string;
const common = { tag: 'sharing', admin: false } as const;

/** The share, transfer and copy routes. */
export const MOVE_ROUTES: readonly RouteDefinition[] = [
  defineRoute({
    ...common,
    method: 'post',
    path: '/images/:imageId/shares',
    operationId: 'shareImage',
    summary: 'Share an available image with another account (pending until it accepts)',
    body: ShareImageInputSchema,
    success: { status: 201, description: 'The share, pending', schema: ImageShareSchema },
    errors: [409],
    handle: async ({ actor, params, body, runtime }) => ({
      status: 201,
      body: await runtime.service.sharing.shareImage(actor, id(params, 'imageId'), body),
    }),
  }),
  defineRoute({
    ...common,
    method: 'get',
    path: '/images/:imageId/shares',
    operationId: 'listImageShares',
    summary: "The shares of one of the account's images (every status)",
    query: PageQuerySchema,
    success: { status: 200, description: 'A page of shares', schema: ImageSharePageSchema },
    handle: async ({ actor, params, query, runtime }) => ({
      status: 200,
      body: await runtime.service.sharing.listImageShares(actor, id(params, 'imageId'), query),
    }),
  }),
  defineRoute({
    ...common,
    method: 'get',
    path: '/shared-images',
    operationId: 'listSharedImages',
    summary: 'Images other accounts shared with this one (accepted), or invitations (pending)',
    query: SharedImagesQuerySchema,
    success: { status: 200, description: 'A page of shares with their images', schema: SharedImagePageSchema },
    handle: async ({ actor, query, runtime }) => ({ status: 200, body: await runtime.service.sharing.listIncomingShares(actor, query) }),
  }),
  defineRoute({
    ...common,
    method: 'post',
    path: '/shares/:shareId/accept',
    operationId: 'acceptShare',
    summary: 'Accept a share: the image becomes deployable by this account',
    success: { status: 200, description: 'The share, accepted', schema: ImageShareSchema },
    errors: [409],
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.sharing.acceptShare(actor, id(params, 'shareId')),
    }),
  }),
  defineRoute({
    ...common,
    method: 'post',
    path: '/shares/:shareId/reject',
    operationId: 'rejectShare',
    summary: 'Decline a share, or leave an accepted one',
    success: { status: 200, description: 'The share, rejected', schema: ImageShareSchema },
    errors: [409],
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.sharing.rejectShare(actor, id(params, 'shareId')),
    }),
  }),
  defineRoute({
    ...common,
    method: 'delete',
    path: '/shares/:shareId',
    operationId: 'revokeShare',
    summary: 'Revoke a share (the owner): no new deploys; deployed instances are unaffected',
    success: { status: 200, description: 'The share, revoked', schema: ImageShareSchema },
    errors: [409],
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.sharing.revokeShare(actor, id(params, 'shareId')),
    }),
  }),
  defineRoute({
    ...common,
    method: 'post',
    path: '/images/:imageId/transfers',
    operationId: 'offerTransfer',
    summary: 'Offer an available image to another account (ownership moves when it accepts)',
    body: OfferTransferInputSchema,
    success: { status: 201, description: 'The transfer, pending', schema: ImageTransferSchema },
    errors: [409],
    handle: async ({ actor, params, body, runtime }) => ({
      status: 201,
      body: await runtime.service.transfers.offerTransfer(actor, id(params, 'imageId'), body),
    }),
  }),
  defineRoute({
    ...common,
    method: 'get',
    path: '/transfers',
    operationId: 'listTransfers',
    summary: 'Transfers offered to (incoming) or by (outgoing) this account',
    query: MyTransfersQuerySchema,
    success: { status: 200, description: 'A page of transfers', schema: ImageTransferPageSchema },
    handle: async ({ actor, query, runtime }) => ({ status: 200, body: await runtime.service.transfers.listTransfers(actor, query) }),
  }),
  defineRoute({
    ...common,
    method: 'get',
    path: '/transfers/:transferId',
    operationId: 'getTransfer',
    summary: 'One transfer this account gives or receives',
    success: { status: 200, description: 'The transfer', schema: ImageTransferSchema },
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.transfers.getTransfer(actor, id(params, 'transferId')),
    }),
  }),
  defineRoute({
    ...common,
    method: 'post',
    path: '/transfers/:transferId/accept',
    operationId: 'acceptTransfer',
    summary: 'Accept a transfer: the image becomes this account’s and its billing moves now',
    success: { status: 200, description: 'The accepted transfer and the image', schema: AcceptedTransferSchema },
    errors: [409],
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.transfers.acceptTransfer(actor, id(params, 'transferId')),
    }),
  }),
  defineRoute({
    ...common,
    method: 'post',
    path: '/transfers/:transferId/reject',
    operationId: 'rejectTransfer',
    summary: 'Decline a transfer',
    success: { status: 200, description: 'The transfer, rejected', schema: ImageTransferSchema },
    errors: [409],
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.transfers.rejectTransfer(actor, id(params, 'transferId')),
    }),
  }),
  defineRoute({
    ...common,
    method: 'post',
    path: '/transfers/:transferId/cancel',
    operationId: 'cancelTransfer',
    summary: 'Withdraw a transfer (the giver)',
    success: { status: 200, description: 'The transfer, cancelled', schema: ImageTransferSchema },
    errors: [409],
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.transfers.cancelTransfer(actor, id(params, 'transferId')),
    }),
  }),
  defineRoute({
    ...common,
    method: 'post',
    path: '/images/:imageId/copies',
    operationId: 'copyImage',
    summary: 'Copy an image to another storage (admins; customers where the operator allows it)',
    body: CopyImageInputSchema,
    success: { status: 202, description: 'The copy (a new image in `creating`) and its copy task', schema: ImageWithTaskSchema },
    errors: [403, 409, 503],
    handle: async ({ actor, params, body, runtime, baseUrl }) => {
      const result = await runtime.service.copies.copyImage(actor, id(params, 'imageId'), body);
      return { status: 202, body: result, location: `${baseUrl}/images/${encodeURIComponent(result.image.id)}` };
    },
  }),
];

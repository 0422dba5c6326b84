/**
 * `instance-images/client`: a typed, fetch-based client of the HTTP API for front ends, scripts and
 * other services. Types come from the API's OpenAPI document (generated into `openapi.ts`).
 * @module
 */
export {
  createImagesClient,
  ImagesApiError,
  isImagesApiError,
  sseMessages,
  type ApiImage,
  type ApiProblem,
  type ApiTask,
  type FollowTaskOptions,
  type ImagesClient,
  type ImagesClientOptions,
} from './client';
export {
  createResumableUpload,
  uploadMetadataHeader,
  type ResumableUpload,
  type ResumableUploadOptions,
  type UploadOutcome,
} from './uploads';
export type { components, operations, paths } from './openapi';
// The message catalog, for front ends that show or translate status reasons.
export {
  MESSAGE_CATALOG,
  formatMessage,
  problemMessage,
  renderMessage,
  statusReasonKey,
  type CatalogMessage,
  type LocatedMessage,
  type MessageKey,
} from '../messages';

/**
 * URL imports: destination rules, download, decompression and format detection.
 * @module
 */
export {
  refusedAddress,
  parseAddress,
  parseNetwork,
  embeddedIPv4,
  destinationRules,
  type AddressCategory,
  type DestinationRules,
  type Network,
  type AddressBytes,
} from './address';
export {
  detectDiskFormat,
  qemuFormatOf,
  DETECT_HEAD_BYTES,
  MAX_HEAD_BYTES,
  type DetectedFormat,
  type ImportFormat,
  type NeedMoreBytes,
} from './format';
export { detectCompression, localDecompressors, type Compression, type Decompressors } from './decompress';
export { checkImportUrl, type ResolveHost } from './download';
export { ImportOptionsSchema, type ImportOptions } from './options';

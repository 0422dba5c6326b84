/**
 * The HTTP API's types, generated from its OpenAPI document by openapi-typescript
 * (`npm run client:generate`; do not edit by hand).
 * @module
 */
export interface paths {
  '/admin/accounts/{accountId}/close': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** The host closed the account: billing stops now and a task deletes every image (idempotent; final) */
    post: operations['closeAccount'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/accounts/{accountId}/limit': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** An account's image cap override */
    get: operations['getAccountLimit'];
    /** Set an account's image cap override (count, and optionally total bytes) */
    put: operations['setAccountLimit'];
    post?: never;
    /** Remove an account's cap override (the location default applies) */
    delete: operations['removeAccountLimit'];
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/accounts/{accountId}/suspension': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    /** The host suspended the account: no new captures or deploys; its images stay and are billed (idempotent) */
    put: operations['suspendAccount'];
    post?: never;
    /** The host made the account active again (idempotent) */
    delete: operations['unsuspendAccount'];
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/deployments': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Materialize an image as the standalone disk of a new instance (the host's create-instance flow; the host chooses the disk path) */
    post: operations['deployImage'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/images': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Images of every account (custom and stock), with filters; includeDeleted=true adds deleted images (history) */
    get: operations['listAllImages'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/images/{imageId}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    post?: never;
    /** Delete any account's image */
    delete: operations['adminDeleteImage'];
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/images/{imageId}/refresh-size': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Re-stat an image on its backend and correct its billed size */
    post: operations['refreshImageSize'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/instances/{instanceId}/deleted': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** The host deleted the instance: its images are kept and marked, a capture from it is cancelled (idempotent) */
    post: operations['instanceDeleted'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/isos': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** All ISOs, any status or visibility */
    get: operations['listAllIsos'];
    put?: never;
    /** Register an ISO file already on a template storage */
    post: operations['registerIso'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/isos/{isoId}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    post?: never;
    /** Delete an ISO record (with `deleteFile=true`, its file too) */
    delete: operations['deleteIso'];
    options?: never;
    head?: never;
    /** Edit an ISO */
    patch: operations['updateIso'];
    trace?: never;
  };
  '/admin/isos/upload': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    /** Upload an ISO: the raw body is streamed to the template storage (never buffered), up to the size limit */
    put: operations['uploadIso'];
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/locations': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Every location with settings */
    get: operations['listLocationSettings'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/locations/{locationId}/settings': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** A location's settings (defaults when never set) */
    get: operations['getLocationSettings'];
    /** Change a location's settings (a price change applies from now) */
    put: operations['setLocationSettings'];
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/media-groups': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Media groups */
    get: operations['listMediaGroups'];
    put?: never;
    /** Create a media group */
    post: operations['createMediaGroup'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/media-groups/{groupId}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    post?: never;
    /** Delete a media group (409 IN_USE while OS images belong to it) */
    delete: operations['deleteMediaGroup'];
    options?: never;
    head?: never;
    /** Edit a media group */
    patch: operations['updateMediaGroup'];
    trace?: never;
  };
  '/admin/os-images': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Stock OS images */
    get: operations['listOsImages'];
    put?: never;
    /** Add a stock OS image from a file on a template storage */
    post: operations['createOsImage'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/os-images/{imageId}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    post?: never;
    /** Delete a stock OS image (its source file is kept) */
    delete: operations['deleteOsImage'];
    options?: never;
    head?: never;
    /** Edit a stock OS image */
    patch: operations['updateOsImage'];
    trace?: never;
  };
  '/admin/os-images/import': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Import a stock OS image from a URL onto a template storage */
    post: operations['importOsImage'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/recover': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Run a recovery pass now (the reaper of the SDK also runs one at start and every tasks.reaperIntervalMs): fail interrupted tasks, clean leftovers */
    post: operations['recover'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/storages': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Image storages (secrets masked) */
    get: operations['listStorages'];
    put?: never;
    /** Create an image storage (config validated by the driver) */
    post: operations['createStorage'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/storages/{storageId}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** One image storage */
    get: operations['getStorage'];
    put?: never;
    post?: never;
    /** Delete a storage (409 IN_USE while images or ISOs live on it) */
    delete: operations['deleteStorage'];
    options?: never;
    head?: never;
    /** Edit a storage (a masked secret keeps its value) */
    patch: operations['updateStorage'];
    trace?: never;
  };
  '/admin/storages/{storageId}/bindings': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Bind a storage to a hypervisor (idempotent) */
    post: operations['bindStorage'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/storages/{storageId}/bindings/{hypervisorId}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    post?: never;
    /** Unbind a storage from a hypervisor */
    delete: operations['unbindStorage'];
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/storages/{storageId}/browse': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The image browser: a page of the files on a storage, classified against the records */
    get: operations['browseStorage'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/storages/{storageId}/chunk-gc': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Garbage-collect a chunked storage: a `chunk-gc` task deletes chunks no image or running capture names */
    post: operations['collectStorageGarbage'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/storages/{storageId}/chunk-verify': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Verify a chunked storage: a `chunk-verify` task re-hashes every chunk; images with broken data go to error */
    post: operations['verifyStorageChunks'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/storages/{storageId}/health': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Check a storage (never fails for an unhealthy backend: see `ok`) */
    get: operations['checkStorageHealth'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/storages/{storageId}/reconcile': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Reconcile a storage against the records (dry run unless `dryRun: false`) */
    post: operations['reconcileStorage'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/tasks': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Tasks of every account, with filters */
    get: operations['listAllTasks'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/admin/usage': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The usage report for one account or all accounts */
    get: operations['usageReport'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/downloads/images/{imageId}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Download an image through a signed link (no session: the link is the credential); Range supported */
    get: operations['downloadImage'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/health': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Health for load balancers: the repositories answer and the queue runs (no actor needed) */
    get: operations['getHealth'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/images': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** My Images: a page of the account's images */
    get: operations['listMyImages'];
    put?: never;
    /** Create an image from an instance (the capture runs in the background) */
    post: operations['createImage'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/images/{imageId}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** One of the account's images */
    get: operations['getImage'];
    put?: never;
    post?: never;
    /** Delete an image (billing stops now; the file is removed in the background) */
    delete: operations['deleteImage'];
    options?: never;
    head?: never;
    /** Change an image's name, description or capability metadata (minimum disk, firmware, architecture, cloud-init, OS type) */
    patch: operations['updateImage'];
    trace?: never;
  };
  '/images/{imageId}/cancel': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Cancel a capture in progress */
    post: operations['cancelCapture'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/images/{imageId}/copies': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Copy an image to another storage (admins; customers where the operator allows it) */
    post: operations['copyImage'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/images/{imageId}/download-link': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** An expiring download link of an available image */
    post: operations['createDownloadLink'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/images/{imageId}/protection': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    /** Protect an image against deletion (`protected: true`) or lift the protection */
    put: operations['setImageProtection'];
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/images/{imageId}/retry': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Retry a failed capture */
    post: operations['retryImage'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/images/{imageId}/shares': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The shares of one of the account's images (every status) */
    get: operations['listImageShares'];
    put?: never;
    /** Share an available image with another account (pending until it accepts) */
    post: operations['shareImage'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/images/{imageId}/transfers': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Offer an available image to another account (ownership moves when it accepts) */
    post: operations['offerTransfer'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/images/import': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Import an image from a URL (the download runs in the background) */
    post: operations['importImage'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/imports/{taskId}/cancel': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Cancel an import; nothing downloaded is kept */
    post: operations['cancelImport'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/instances/{instanceId}/iso': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Mount an ISO to an own instance and boot from it */
    post: operations['mountIso'];
    /** Unmount the ISO of an own instance (idempotent) */
    delete: operations['unmountIso'];
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/isos': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** ISOs the caller may mount */
    get: operations['listIsos'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/openapi.json': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** This document */
    get: operations['getOpenApiDocument'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/os-picker': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The OS picker: stock images by visible media group, plus My Images (with a plan, only images that boot on it) */
    get: operations['listDeployableImages'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/shared-images': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Images other accounts shared with this one (accepted), or invitations (pending) */
    get: operations['listSharedImages'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/shares/{shareId}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    post?: never;
    /** Revoke a share (the owner): no new deploys; deployed instances are unaffected */
    delete: operations['revokeShare'];
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/shares/{shareId}/accept': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Accept a share: the image becomes deployable by this account */
    post: operations['acceptShare'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/shares/{shareId}/reject': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Decline a share, or leave an accepted one */
    post: operations['rejectShare'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/tasks': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The tasks page: the account's tasks, newest first */
    get: operations['listMyTasks'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/tasks/{taskId}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** One task with its progress */
    get: operations['getTask'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/tasks/{taskId}/events': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Task progress as Server-Sent Events: `task` (the current state), then `task.progress`… and `task.finished`, then the stream ends */
    get: operations['streamTaskEvents'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/transfers': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Transfers offered to (incoming) or by (outgoing) this account */
    get: operations['listTransfers'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/transfers/{transferId}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** One transfer this account gives or receives */
    get: operations['getTransfer'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/transfers/{transferId}/accept': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Accept a transfer: the image becomes this account’s and its billing moves now */
    post: operations['acceptTransfer'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/transfers/{transferId}/cancel': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Withdraw a transfer (the giver) */
    post: operations['cancelTransfer'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/transfers/{transferId}/reject': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /** Decline a transfer */
    post: operations['rejectTransfer'];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/uploads': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * tus creation: start a resumable upload of an image (customers where the location allows imports; operators also for OS images)
     * @description `Upload-Metadata` (comma-separated `key base64(value)` pairs) says what the upload becomes: keys `kind`, `name`, `description`, `locationId`, `accountId`, `sha256`, `osType`, `cloudInit`, `mediaGroupId`, `storageId`, `hypervisorId`. `kind` is `image` (default: a custom image, with `name`, `locationId`, optional `description`, `sha256`, and `accountId` for operators) or `os-image` (operators: `name`, `osType`, `storageId`, optional `hypervisorId`, `mediaGroupId`, `cloudInit` = `true`/`false`, `description`, `sha256`). `filename` (used as the name when `name` is absent), `filetype`, `type` and `relativePath` are accepted as tus clients send them. The account's image cap is checked now and again when the upload completes.
     */
    post: operations['createUpload'];
    delete?: never;
    /** tus: the protocol versions, extensions, largest size and checksum algorithms (no actor needed) */
    options: operations['getUploadCapabilities'];
    head?: never;
    patch?: never;
    trace?: never;
  };
  '/uploads/{uploadId}': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The upload as JSON; `HEAD` answers the same as tus headers (`Upload-Offset` to resume from) */
    get: operations['getUpload'];
    put?: never;
    post?: never;
    /** tus termination: remove the upload and its staged bytes (a complete upload’s import goes on) */
    delete: operations['terminateUpload'];
    options?: never;
    head?: never;
    /** tus: append a piece at `Upload-Offset`; the piece that completes the upload starts its import */
    patch: operations['writeUpload'];
    trace?: never;
  };
  '/usage': {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** The usage report's Images section for a period [from, to) */
    get: operations['myUsageReport'];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
}
export type webhooks = Record<string, never>;
export interface components {
  schemas: {
    AcceptedTransfer: {
      image: components['schemas']['Image'];
      transfer: components['schemas']['ImageTransfer'];
    };
    AccountClosing: {
      state: components['schemas']['AccountState'];
      task: components['schemas']['Task'] | null;
    };
    AccountLimitInput: {
      imageBytesLimit?: number | null;
      imageLimit: number;
    };
    AccountLimitResponse: {
      limit: {
        accountId: string;
        imageBytesLimit?: number | null;
        imageLimit: number;
        /** Format: date-time */
        updatedAt: string;
      } | null;
    };
    AccountState: {
      accountId: string;
      /** Format: date-time */
      since: string;
      /** @enum {string} */
      status: 'suspended' | 'closed';
      /** Format: date-time */
      updatedAt: string;
    };
    BindingInput: {
      hypervisorId: string;
    };
    BrowsePage: {
      chunks?: {
        chunks: number;
        dedupRatio: string;
        logicalBytes: number;
        manifests: number;
        uniqueBytes: number;
        unreadableManifests: number;
      };
      items: {
        imageId: string | null;
        key: string;
        /** @enum {string} */
        kind: 'ok' | 'orphan' | 'stale' | 'size-mismatch';
        message: string;
        /** Format: date-time */
        modifiedAt: string;
        size: number;
        taskId?: string;
      }[];
      nextCursor: string | null;
    };
    CopyImageInput: {
      hypervisorId?: string;
      locationId?: string;
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name?: string;
      storageId?: string;
    };
    CreateImageInput: {
      compress?: boolean;
      /** @description Up to 1000 characters; no control characters except newline and tab; stored exactly as sent (never trimmed) */
      description?: string;
      /** @enum {string} */
      format?: 'qcow2' | 'raw';
      instanceId: string;
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name: string;
    };
    CreateOsImageInput: {
      /** @default false */
      cloudInit: boolean;
      /** @description Up to 1000 characters; no control characters except newline and tab; stored exactly as sent (never trimmed) */
      description?: string;
      fileKey: string;
      /**
       * @default qcow2
       * @enum {string}
       */
      format: 'qcow2' | 'raw';
      hypervisorId?: string | null;
      mediaGroupId?: string | null;
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name: string;
      /** @enum {string} */
      osType: 'linux' | 'windows' | 'bsd';
      storageId: string;
    };
    CreateStorageInput: {
      chunks?: {
        /** @default 4194304 */
        chunkSizeBytes: number;
        /**
         * @default none
         * @enum {string}
         */
        codec: 'none' | 'zstd';
        /**
         * @default storage
         * @enum {string}
         */
        scope: 'storage' | 'account';
      };
      config: {
        [key: string]: unknown;
      };
      driver: string;
      /** @default true */
      enabled: boolean;
      /**
       * @default files
       * @enum {string}
       */
      layout: 'files' | 'chunks';
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name: string;
      /**
       * @default custom-images
       * @enum {string}
       */
      purpose: 'custom-images' | 'templates';
    };
    DeployableImages: {
      groups: {
        group: components['schemas']['MediaGroup'];
        images: components['schemas']['Image'][];
      }[];
      myImages: components['schemas']['Image'][];
      sharedWithMe: components['schemas']['Image'][];
      ungrouped: components['schemas']['Image'][];
    };
    DeployInput: {
      architecture?: string;
      /** @enum {string} */
      firmware?: 'bios' | 'uefi';
      imageId: string;
      instanceId: string;
      sizeBytes?: number;
      /** @enum {string} */
      targetFormat?: 'qcow2' | 'raw';
      targetPath: string;
    };
    DeployStarted: {
      task: components['schemas']['Task'];
    };
    DownloadLink: {
      /** Format: date-time */
      expiresAt: string;
      filename: string;
      /** @enum {string} */
      format: 'qcow2' | 'raw';
      imageId: string;
      /**
       * @description `presigned`: the storage serves the file; `signed`: the panel streams it
       * @enum {string}
       */
      kind: 'presigned' | 'signed';
      sha256: string;
      sizeBytes: number;
      /** @description Absolute for `presigned`; for `signed` a path on the panel (resolve it against the panel origin) */
      url: string;
    };
    DownloadLinkInput: {
      expiresInSeconds?: number;
    };
    Image: {
      /** @default null */
      accountId: string | null;
      architecture?: string | null;
      /** @default null */
      availableAt: string | null;
      /** @default false */
      cloudInit: boolean;
      compressed?: boolean | null;
      /** @default null */
      consistency: ('filesystem-frozen' | 'crash-consistent' | 'cold') | null;
      /** Format: date-time */
      createdAt: string;
      /** @default null */
      deletedAt: string | null;
      /**
       * @description Up to 1000 characters; no control characters except newline and tab; stored exactly as sent (never trimmed)
       * @default
       */
      description: string;
      fileKey: string;
      firmware?: ('bios' | 'uefi') | null;
      /**
       * @default qcow2
       * @enum {string}
       */
      format: 'qcow2' | 'raw';
      /** @default null */
      hypervisorId: string | null;
      id: string;
      /** @enum {string} */
      kind: 'custom' | 'stock';
      /** @default null */
      locationId: string | null;
      /** @default null */
      mediaGroupId: string | null;
      minDiskBytes?: number | null;
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name: string;
      /** @default null */
      osType: ('linux' | 'windows' | 'bsd') | null;
      protected?: boolean | null;
      reservedBytes?: number | null;
      /** @default null */
      sha256: string | null;
      /** @default null */
      sizeBytes: number | null;
      sourceInstanceDeletedAt?: string | null;
      /** @default null */
      sourceInstanceId: string | null;
      /** @default null */
      sourceInstanceName: string | null;
      /** @enum {string} */
      status: 'creating' | 'available' | 'error' | 'deleting' | 'deleted';
      /** @default null */
      statusReason: {
        code: string;
        message: string;
      } | null;
      storageId: string;
      /** Format: date-time */
      updatedAt: string;
      /** @default null */
      virtualSizeBytes: number | null;
    };
    ImagePage: {
      items: components['schemas']['Image'][];
      nextCursor: string | null;
    };
    ImageResponse: {
      image: components['schemas']['Image'];
    };
    ImageShare: {
      accountId: string;
      /** Format: date-time */
      createdAt: string;
      /** @default null */
      decidedAt: string | null;
      id: string;
      imageId: string;
      ownerAccountId: string;
      /** @enum {string} */
      status: 'pending' | 'accepted' | 'rejected' | 'revoked';
      /** Format: date-time */
      updatedAt: string;
    };
    ImageSharePage: {
      items: components['schemas']['ImageShare'][];
      nextCursor: string | null;
    };
    ImageTransfer: {
      /** Format: date-time */
      createdAt: string;
      /** @default null */
      decidedAt: string | null;
      /** Format: date-time */
      expiresAt: string;
      fromAccountId: string;
      id: string;
      imageId: string;
      /** @enum {string} */
      status: 'pending' | 'accepted' | 'rejected' | 'cancelled' | 'expired';
      toAccountId: string;
      /** Format: date-time */
      updatedAt: string;
    };
    ImageTransferPage: {
      items: components['schemas']['ImageTransfer'][];
      nextCursor: string | null;
    };
    ImageWithTask: {
      image: components['schemas']['Image'];
      task: components['schemas']['Task'] | null;
    };
    ImportImageInput: {
      accountId?: string;
      /** @description Up to 1000 characters; no control characters except newline and tab; stored exactly as sent (never trimmed) */
      description?: string;
      locationId: string;
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name: string;
      sha256?: string;
      /** @description An http:// or https:// URL of the image (raw, qcow2, vmdk, vhdx, vpc or iso; gz, xz, zst or bz2 compressed or not) */
      url: string;
    };
    ImportOsImageInput: {
      /** @default false */
      cloudInit: boolean;
      /** @description Up to 1000 characters; no control characters except newline and tab; stored exactly as sent (never trimmed) */
      description?: string;
      hypervisorId?: string | null;
      mediaGroupId?: string | null;
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name: string;
      /** @enum {string} */
      osType: 'linux' | 'windows' | 'bsd';
      sha256?: string;
      storageId: string;
      /** @description An http:// or https:// URL of the image (raw, qcow2, vmdk, vhdx, vpc or iso; gz, xz, zst or bz2 compressed or not) */
      url: string;
    };
    InstanceDeletion: {
      images: components['schemas']['Image'][];
      instanceId: string;
    };
    Iso: {
      /** Format: date-time */
      createdAt: string;
      /** @default true */
      customerVisible: boolean;
      /**
       * @description Up to 1000 characters; no control characters except newline and tab; stored exactly as sent (never trimmed)
       * @default
       */
      description: string;
      fileKey: string;
      id: string;
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name: string;
      /** @default null */
      sha256: string | null;
      /** @default null */
      sizeBytes: number | null;
      /** @enum {string} */
      status: 'uploading' | 'available' | 'error';
      /** @default null */
      statusReason: {
        code: string;
        message: string;
      } | null;
      storageId: string;
      /** Format: date-time */
      updatedAt: string;
    };
    IsoInput: {
      /** @default true */
      customerVisible: boolean;
      /** @description Up to 1000 characters; no control characters except newline and tab; stored exactly as sent (never trimmed) */
      description?: string;
      fileKey: string;
      hypervisorId?: string | null;
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name: string;
      storageId: string;
    };
    IsoPage: {
      items: components['schemas']['Iso'][];
      nextCursor: string | null;
    };
    LocationSettings: {
      /** @default USD */
      currency: string;
      defaultImageBytesLimit?: number | null;
      /** @default null */
      defaultImageLimit: number | null;
      /** @default false */
      imagesEnabled: boolean;
      locationId: string;
      /** @default 0 */
      pricePerGbMonth: string;
      /** Format: date-time */
      updatedAt: string;
      /** @default false */
      urlImportEnabled: boolean;
    };
    LocationSettingsInput: {
      currency?: string;
      defaultImageBytesLimit?: number | null;
      defaultImageLimit?: number | null;
      imagesEnabled?: boolean;
      pricePerGbMonth?: string;
      urlImportEnabled?: boolean;
    };
    LocationSettingsList: {
      items: components['schemas']['LocationSettings'][];
    };
    MediaGroup: {
      /** Format: date-time */
      createdAt: string;
      /** @default true */
      customerVisible: boolean;
      id: string;
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name: string;
      /** @default 0 */
      order: number;
      /** Format: date-time */
      updatedAt: string;
    };
    MediaGroupInput: {
      /** @default true */
      customerVisible: boolean;
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name: string;
      /** @default 0 */
      order: number;
    };
    MediaGroupList: {
      items: components['schemas']['MediaGroup'][];
    };
    MountIsoInput: {
      isoId: string;
    };
    OfferTransferInput: {
      accountId: string;
      expiresInSeconds?: number;
    };
    OsImageImport: {
      imageId: string;
      task: components['schemas']['Task'];
    };
    Problem: {
      code: string;
      detail: string;
      details?: {
        [key: string]: unknown;
      };
      fields?: {
        message: string;
        path: string;
      }[];
      status: number;
      title: string;
      type: string;
    };
    ReconcileOptions: {
      /** @default false */
      deleteLeftovers: boolean;
      /** @default false */
      deleteOrphans: boolean;
      /** @default true */
      dryRun: boolean;
      hypervisorId?: string | null;
      /** @default false */
      markMissing: boolean;
    };
    ReconcileResult: {
      findings: {
        /** @enum {string} */
        action?: 'deleted-file' | 'marked-error' | 'none';
        dryRun?: boolean;
        hypervisorId: string | null;
        imageId: string | null;
        key: string;
        /** @enum {string} */
        kind: 'ok' | 'orphan' | 'missing' | 'stale' | 'size-mismatch' | 'leftover';
        message: string;
        storageId: string;
      }[];
    };
    RecoveryReport: {
      failedImages: string[];
      hypervisorActions: string[];
      interruptedTasks: string[];
      removedFiles: string[];
    };
    RefreshSizeResponse: {
      image: components['schemas']['Image'];
      task: components['schemas']['Task'];
    };
    SharedImage: {
      image: components['schemas']['Image'];
      share: components['schemas']['ImageShare'];
    };
    SharedImagePage: {
      items: components['schemas']['SharedImage'][];
      nextCursor: string | null;
    };
    ShareImageInput: {
      accountId: string;
    };
    StorageBinding: {
      /** Format: date-time */
      createdAt: string;
      hypervisorId: string;
      storageId: string;
    };
    StorageHealth: {
      chunks?: {
        chunks: number;
        dedupRatio: string;
        logicalBytes: number;
        manifests: number;
        uniqueBytes: number;
        unreadableManifests: number;
      };
      freeBytes: number | null;
      message: string;
      ok: boolean;
    };
    StorageList: {
      items: components['schemas']['StorageView'][];
    };
    StorageView: {
      chunks?: {
        /** @default 4194304 */
        chunkSizeBytes: number;
        /**
         * @default none
         * @enum {string}
         */
        codec: 'none' | 'zstd';
        /**
         * @default storage
         * @enum {string}
         */
        scope: 'storage' | 'account';
      };
      config: {
        [key: string]: unknown;
      };
      /** Format: date-time */
      createdAt: string;
      driver: string;
      /** @default true */
      enabled: boolean;
      hypervisorIds: string[];
      id: string;
      /** @enum {string} */
      layout?: 'files' | 'chunks';
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name: string;
      /** @enum {string} */
      purpose: 'custom-images' | 'templates';
      /** Format: date-time */
      updatedAt: string;
    };
    Task: {
      /** @default null */
      accountId: string | null;
      /** @default 0 */
      attempts: number;
      /** Format: date-time */
      createdAt: string;
      /** @default null */
      errorCode: string | null;
      /** @default null */
      errorMessage: string | null;
      /** @default null */
      finishedAt: string | null;
      /** @default null */
      heartbeatAt: string | null;
      /** @default null */
      hypervisorId: string | null;
      id: string;
      /** @default null */
      incarnationId: string | null;
      /**
       * @default {
       *       "step": "queued",
       *       "percent": 0,
       *       "bytesDone": 0,
       *       "bytesTotal": null
       *     }
       */
      progress: {
        /** @default 0 */
        bytesDone: number;
        /** @default null */
        bytesTotal: number | null;
        /** @default 0 */
        percent: number;
        step: string;
      };
      /** @default null */
      startedAt: string | null;
      /** @enum {string} */
      status: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
      storageId?: string | null;
      subjectId: string;
      /** @enum {string} */
      subjectKind: 'image' | 'iso' | 'storage' | 'instance' | 'account';
      /** @enum {string} */
      type:
        | 'capture'
        | 'delete'
        | 'deploy'
        | 'iso-upload'
        | 'refresh-size'
        | 'reconcile'
        | 'close-account'
        | 'copy'
        | 'chunk-gc'
        | 'chunk-verify'
        | 'import';
      /** Format: date-time */
      updatedAt: string;
      /** @default null */
      workerId: string | null;
    };
    TaskPage: {
      items: components['schemas']['Task'][];
      nextCursor: string | null;
    };
    UpdateIsoInput: {
      customerVisible?: boolean;
      /** @description Up to 1000 characters; no control characters except newline and tab; stored exactly as sent (never trimmed) */
      description?: string;
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name?: string;
    };
    UpdateOsImageInput: {
      cloudInit?: boolean;
      /** @description Up to 1000 characters; no control characters except newline and tab; stored exactly as sent (never trimmed) */
      description?: string;
      mediaGroupId?: string | null;
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name?: string;
      /** @enum {string} */
      osType?: 'linux' | 'windows' | 'bsd';
    };
    UpdateStorageInput: {
      chunks?: {
        /** @default 4194304 */
        chunkSizeBytes: number;
        /**
         * @default none
         * @enum {string}
         */
        codec: 'none' | 'zstd';
        /**
         * @default storage
         * @enum {string}
         */
        scope: 'storage' | 'account';
      };
      config?: {
        [key: string]: unknown;
      };
      enabled?: boolean;
      /** @enum {string} */
      layout?: 'files' | 'chunks';
      /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
      name?: string;
    };
    UsageReport: {
      accountId: string | null;
      currency: string;
      images: {
        accounts: {
          accountId: string;
          lineCount: number;
          total: string;
        }[];
        exactTotal: string;
        lines: ({
          accountId: string;
          amount: string;
          billedHours: string;
          exactAmount: string;
          imageId: string;
          imageName: string | null;
          locationId: string;
          rate: string;
          sizeBytes: number;
          sizeGb: string;
        } & {
          [key: string]: unknown;
        })[];
        total: string;
      } & {
        [key: string]: unknown;
      };
      period: {
        /** Format: date-time */
        from: string;
        /** Format: date-time */
        to: string;
      };
      policy: {
        [key: string]: unknown;
      };
    } & {
      [key: string]: unknown;
    };
  };
  responses: {
    /** @description The input is not valid (`VALIDATION_FAILED` with `fields`, e.g. an unknown query parameter or body field, ill-formed Unicode, a malformed path escape; or `MALFORMED_JSON`) */
    Problem400: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/problem+json': components['schemas']['Problem'];
      };
    };
    /** @description No actor: the caller is not signed in (`UNAUTHENTICATED`) */
    Problem401: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/problem+json': components['schemas']['Problem'];
      };
    };
    /** @description Not allowed (`FORBIDDEN`; `FEATURE_DISABLED` when the location has the image feature off; `ACCOUNT_SUSPENDED`, `ACCOUNT_CLOSED`) */
    Problem403: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/problem+json': components['schemas']['Problem'];
      };
    };
    /** @description Not found, or another account's (`NOT_FOUND`) */
    Problem404: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/problem+json': components['schemas']['Problem'];
      };
    };
    /** @description Conflicts with the current state (`INVALID_STATE`, `IN_USE`, `CONFLICT`, `IMAGE_LIMIT_REACHED`, `IMAGE_PROTECTED`, `CANCELLED`; `ACCOUNT_MISMATCH` for admins) */
    Problem409: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/problem+json': components['schemas']['Problem'];
      };
    };
    /** @description The body is too large (`PAYLOAD_TOO_LARGE`) */
    Problem413: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/problem+json': components['schemas']['Problem'];
      };
    };
    /** @description Wrong content type (`UNSUPPORTED_MEDIA_TYPE`) */
    Problem415: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/problem+json': components['schemas']['Problem'];
      };
    };
    /** @description The range lies outside the file (`RANGE_NOT_SATISFIABLE`) */
    Problem416: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/problem+json': components['schemas']['Problem'];
      };
    };
    /** @description The data does not match its checksum (`CHECKSUM_MISMATCH`), an import URL leads where imports may not go (`DESTINATION_REFUSED`), the file is no image we import (`UNSUPPORTED_IMAGE`), or the image cannot boot on the plan (`IMAGE_INCOMPATIBLE`) */
    Problem422: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/problem+json': components['schemas']['Problem'];
      };
    };
    /** @description Unexpected error (`INTERNAL`; details are logged, never sent) */
    Problem500: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/problem+json': components['schemas']['Problem'];
      };
    };
    /** @description An upstream host misbehaved (`HOST_KEY_MISMATCH`, `COMMAND_FAILED`) */
    Problem502: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/problem+json': components['schemas']['Problem'];
      };
    };
    /** @description A storage or hypervisor is not reachable (`STORAGE_UNAVAILABLE`, `HYPERVISOR_UNREACHABLE`) */
    Problem503: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/problem+json': components['schemas']['Problem'];
      };
    };
    /** @description The operation timed out (`TIMEOUT`) */
    Problem504: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/problem+json': components['schemas']['Problem'];
      };
    };
    /** @description No storage for the image (`NO_IMAGE_STORAGE`, `STORAGE_FULL`) */
    Problem507: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        'application/problem+json': components['schemas']['Problem'];
      };
    };
  };
  parameters: never;
  requestBodies: never;
  headers: never;
  pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
  closeAccount: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        accountId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The closed state and the `close-account` task (null when nothing was left) */
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['AccountClosing'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  getAccountLimit: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        accountId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The override, or null */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['AccountLimitResponse'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  setAccountLimit: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        accountId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['AccountLimitInput'];
      };
    };
    responses: {
      /** @description The override */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['AccountLimitResponse'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  removeAccountLimit: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        accountId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Removed */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  suspendAccount: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        accountId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The suspended state (its `since` is the first suspension) */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['AccountState'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  unsuspendAccount: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        accountId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Active */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  deployImage: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['DeployInput'];
      };
    };
    responses: {
      /** @description The deploy task (queued); the disk exists once it is `completed`: follow `GET /tasks/{taskId}` or its events stream */
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['DeployStarted'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      409: components['responses']['Problem409'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      422: components['responses']['Problem422'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  listAllImages: {
    parameters: {
      query?: {
        accountId?: string;
        cursor?: string;
        direction?: 'asc' | 'desc';
        includeDeleted?: boolean;
        limit?: number;
        sort?: 'createdAt' | 'name';
        status?: 'creating' | 'available' | 'error' | 'deleting';
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description A page of images */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImagePage'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  adminDeleteImage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The image in `deleting` and its task */
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageWithTask'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  refreshImageSize: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The image and the finished task */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['RefreshSizeResponse'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  instanceDeleted: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        instanceId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The instance's images, marked */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['InstanceDeletion'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  listAllIsos: {
    parameters: {
      query?: {
        cursor?: string;
        limit?: number;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description A page of ISOs */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['IsoPage'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  registerIso: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['IsoInput'];
      };
    };
    responses: {
      /** @description The ISO */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Iso'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  deleteIso: {
    parameters: {
      query?: {
        deleteFile?: boolean;
        hypervisorId?: string;
      };
      header?: never;
      path: {
        isoId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Deleted */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  updateIso: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        isoId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['UpdateIsoInput'];
      };
    };
    responses: {
      /** @description The ISO */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Iso'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  uploadIso: {
    parameters: {
      query: {
        customerVisible?: boolean;
        description?: string;
        fileKey: string;
        hypervisorId?: string;
        name: string;
        storageId: string;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/octet-stream': string;
        'application/x-iso9660-image': string;
      };
    };
    responses: {
      /** @description The uploaded ISO (available, with size and checksum) */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Iso'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      409: components['responses']['Problem409'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      422: components['responses']['Problem422'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
      507: components['responses']['Problem507'];
    };
  };
  listLocationSettings: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Location settings */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['LocationSettingsList'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  getLocationSettings: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        locationId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The settings */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['LocationSettings'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  setLocationSettings: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        locationId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['LocationSettingsInput'];
      };
    };
    responses: {
      /** @description The settings */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['LocationSettings'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  listMediaGroups: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Media groups */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['MediaGroupList'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  createMediaGroup: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['MediaGroupInput'];
      };
    };
    responses: {
      /** @description The media group */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['MediaGroup'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  deleteMediaGroup: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        groupId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Deleted */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  updateMediaGroup: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        groupId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': {
          /** @default true */
          customerVisible?: boolean;
          /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
          name?: string;
          /** @default 0 */
          order?: number;
        };
      };
    };
    responses: {
      /** @description The media group */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['MediaGroup'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  listOsImages: {
    parameters: {
      query?: {
        cursor?: string;
        limit?: number;
        mediaGroupId?: string;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description A page of OS images */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImagePage'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  createOsImage: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['CreateOsImageInput'];
      };
    };
    responses: {
      /** @description The OS image */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Image'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  deleteOsImage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The deleted OS image */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageResponse'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  updateOsImage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['UpdateOsImageInput'];
      };
    };
    responses: {
      /** @description The OS image */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Image'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  importOsImage: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['ImportOsImageInput'];
      };
    };
    responses: {
      /** @description The future image id and the import task */
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['OsImageImport'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      422: components['responses']['Problem422'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
      507: components['responses']['Problem507'];
    };
  };
  recover: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description What recovery did */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['RecoveryReport'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  listStorages: {
    parameters: {
      query?: {
        purpose?: 'custom-images' | 'templates';
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Storages */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['StorageList'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  createStorage: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['CreateStorageInput'];
      };
    };
    responses: {
      /** @description The storage */
      201: {
        headers: {
          /** @description The new storage (`GET /admin/storages/{storageId}`) */
          Location?: string;
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['StorageView'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  getStorage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        storageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The storage */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['StorageView'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  deleteStorage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        storageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Deleted */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  updateStorage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        storageId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['UpdateStorageInput'];
      };
    };
    responses: {
      /** @description The storage */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['StorageView'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  bindStorage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        storageId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['BindingInput'];
      };
    };
    responses: {
      /** @description The binding */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['StorageBinding'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  unbindStorage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        hypervisorId: string;
        storageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Unbound */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  browseStorage: {
    parameters: {
      query?: {
        cursor?: string;
        hypervisorId?: string;
        limit?: number;
        prefix?: string;
      };
      header?: never;
      path: {
        storageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description A page of files */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['BrowsePage'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  collectStorageGarbage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        storageId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': {
          /** @default false */
          dryRun?: boolean;
        };
      };
    };
    responses: {
      /** @description The garbage collection task (the running one, if any) */
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Task'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  verifyStorageChunks: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        storageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The verification task (the running one, if any) */
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Task'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  checkStorageHealth: {
    parameters: {
      query?: {
        hypervisorId?: string;
      };
      header?: never;
      path: {
        storageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The health */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['StorageHealth'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  reconcileStorage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        storageId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['ReconcileOptions'];
      };
    };
    responses: {
      /** @description Every finding, with the action taken or simulated */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ReconcileResult'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  listAllTasks: {
    parameters: {
      query?: {
        accountId?: string;
        cursor?: string;
        limit?: number;
        status?: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
        subjectId?: string;
        type?:
          | 'capture'
          | 'delete'
          | 'deploy'
          | 'iso-upload'
          | 'refresh-size'
          | 'reconcile'
          | 'close-account'
          | 'copy'
          | 'chunk-gc'
          | 'chunk-verify'
          | 'import';
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description A page of tasks */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['TaskPage'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  usageReport: {
    parameters: {
      query: {
        accountId?: string;
        from: string;
        to: string;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The report */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['UsageReport'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  downloadImage: {
    parameters: {
      query: {
        account: string;
        expires: number;
        signature: string;
      };
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The image file (206 with one range) */
      200: {
        headers: {
          /** @description sha-256 of the whole file (RFC 9530) */
          'Repr-Digest'?: string;
          /** @description sha-256 of the whole file, hex */
          'X-Checksum-Sha256'?: string;
          [name: string]: unknown;
        };
        content: {
          'application/octet-stream': string;
        };
      };
      /** @description One range of the file (`Range: bytes=…`) */
      206: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components['responses']['Problem400'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      416: components['responses']['Problem416'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  getHealth: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Every check passed */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            checks: {
              queue: {
                message: string;
                ok: boolean;
              };
              repositories: {
                message: string;
                ok: boolean;
              };
            };
            ok: boolean;
          };
        };
      };
      400: components['responses']['Problem400'];
      /** @description A check failed */
      503: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            checks: {
              queue: {
                message: string;
                ok: boolean;
              };
              repositories: {
                message: string;
                ok: boolean;
              };
            };
            ok: boolean;
          };
        };
      };
    };
  };
  listMyImages: {
    parameters: {
      query?: {
        cursor?: string;
        direction?: 'asc' | 'desc';
        limit?: number;
        sort?: 'createdAt' | 'name';
        status?: 'creating' | 'available' | 'error' | 'deleting';
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description A page of images */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImagePage'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  createImage: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['CreateImageInput'];
      };
    };
    responses: {
      /** @description The image in `creating` and its capture task */
      202: {
        headers: {
          /** @description The new image (`GET /images/{imageId}`) */
          Location?: string;
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageWithTask'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
      507: components['responses']['Problem507'];
    };
  };
  getImage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The image */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Image'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  deleteImage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The image in `deleting` and its task (task null when it was already being deleted) */
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageWithTask'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  updateImage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': {
          architecture?: string | null;
          cloudInit?: boolean;
          /** @description Up to 1000 characters; no control characters except newline and tab; stored exactly as sent (never trimmed) */
          description?: string;
          firmware?: ('bios' | 'uefi') | null;
          minDiskBytes?: number | null;
          /** @description 1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent */
          name?: string;
          osType?: ('linux' | 'windows' | 'bsd') | null;
        };
      };
    };
    responses: {
      /** @description The updated image */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Image'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  cancelCapture: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The image (in `error`, reason CANCELLED) */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Image'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  copyImage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['CopyImageInput'];
      };
    };
    responses: {
      /** @description The copy (a new image in `creating`) and its copy task */
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageWithTask'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  createDownloadLink: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['DownloadLinkInput'];
      };
    };
    responses: {
      /** @description The link */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['DownloadLink'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  setImageProtection: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': {
          protected: boolean;
        };
      };
    };
    responses: {
      /** @description The image with its protection */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Image'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  retryImage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The image back in `creating` and its new task */
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageWithTask'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  listImageShares: {
    parameters: {
      query?: {
        cursor?: string;
        limit?: number;
      };
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description A page of shares */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageSharePage'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  shareImage: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['ShareImageInput'];
      };
    };
    responses: {
      /** @description The share, pending */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageShare'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  offerTransfer: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        imageId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['OfferTransferInput'];
      };
    };
    responses: {
      /** @description The transfer, pending */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageTransfer'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  importImage: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['ImportImageInput'];
      };
    };
    responses: {
      /** @description The image in `creating` and its import task */
      202: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageWithTask'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      409: components['responses']['Problem409'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      422: components['responses']['Problem422'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
      507: components['responses']['Problem507'];
    };
  };
  cancelImport: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        taskId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The import task */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Task'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  mountIso: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        instanceId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/json': components['schemas']['MountIsoInput'];
      };
    };
    responses: {
      /** @description Mounted */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  unmountIso: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        instanceId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Unmounted */
      204: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  listIsos: {
    parameters: {
      query?: {
        cursor?: string;
        limit?: number;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description A page of ISOs */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['IsoPage'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  getOpenApiDocument: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The OpenAPI 3.1 document */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            info: Record<string, never>;
            /** @constant */
            openapi: '3.1.0';
            paths: Record<string, never>;
          };
        };
      };
      400: components['responses']['Problem400'];
    };
  };
  listDeployableImages: {
    parameters: {
      query?: {
        accountId?: string;
        architecture?: string;
        diskBytes?: number;
        firmware?: 'bios' | 'uefi';
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Deployable images */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['DeployableImages'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  listSharedImages: {
    parameters: {
      query?: {
        cursor?: string;
        limit?: number;
        status?: 'pending' | 'accepted';
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description A page of shares with their images */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['SharedImagePage'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  revokeShare: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        shareId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The share, revoked */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageShare'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  acceptShare: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        shareId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The share, accepted */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageShare'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  rejectShare: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        shareId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The share, rejected */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageShare'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  listMyTasks: {
    parameters: {
      query?: {
        cursor?: string;
        limit?: number;
        status?: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
        subjectId?: string;
        type?:
          | 'capture'
          | 'delete'
          | 'deploy'
          | 'iso-upload'
          | 'refresh-size'
          | 'reconcile'
          | 'close-account'
          | 'copy'
          | 'chunk-gc'
          | 'chunk-verify'
          | 'import';
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description A page of tasks */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['TaskPage'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  getTask: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        taskId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The task */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['Task'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  streamTaskEvents: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        taskId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description An event stream; each `data:` line is the task as JSON */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'text/event-stream': string;
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  listTransfers: {
    parameters: {
      query?: {
        cursor?: string;
        direction?: 'incoming' | 'outgoing';
        limit?: number;
        status?: 'pending' | 'accepted' | 'rejected' | 'cancelled' | 'expired';
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description A page of transfers */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageTransferPage'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  getTransfer: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        transferId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The transfer */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageTransfer'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  acceptTransfer: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        transferId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The accepted transfer and the image */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['AcceptedTransfer'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  cancelTransfer: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        transferId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The transfer, cancelled */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageTransfer'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  rejectTransfer: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        transferId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The transfer, rejected */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['ImageTransfer'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
  createUpload: {
    parameters: {
      query?: never;
      header: {
        'Tus-Resumable': '1.0.0';
        'Upload-Defer-Length'?: '1';
        /** @description The whole size; or send `Upload-Defer-Length: 1` */
        'Upload-Length'?: number;
        'Upload-Metadata': string;
      };
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Created; continue with PATCH at `Location` */
      201: {
        headers: {
          /** @description The upload URL */
          Location: string;
          /** @description The protocol version */
          'Tus-Resumable': '1.0.0';
          /** @description `1` while the length is not known yet */
          'Upload-Defer-Length'?: '1';
          /** @description When an idle upload is removed (RFC 9110 date) */
          'Upload-Expires'?: string;
          /** @description Once complete: the image being imported */
          'Upload-Image-Id'?: string;
          /** @description The whole size (absent while deferred) */
          'Upload-Length'?: number;
          /** @description Bytes stored so far */
          'Upload-Offset': number;
          /** @description Once complete: its `import` task */
          'Upload-Task-Id'?: string;
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      403: components['responses']['Problem403'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      /** @description Another protocol version (`Tus-Version` names ours) */
      412: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      413: components['responses']['Problem413'];
      500: components['responses']['Problem500'];
      507: components['responses']['Problem507'];
    };
  };
  getUploadCapabilities: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The capabilities */
      204: {
        headers: {
          /** @description Piece checksums: sha1, sha256, md5 */
          'Tus-Checksum-Algorithm': string;
          /** @description Extensions: creation, creation-defer-length, termination, checksum, expiration */
          'Tus-Extension': string;
          /** @description The largest upload in bytes (`uploads.maxUploadBytes`) */
          'Tus-Max-Size': number;
          /** @description Versions served */
          'Tus-Version': '1.0.0';
          [name: string]: unknown;
        };
        content?: never;
      };
      404: components['responses']['Problem404'];
    };
  };
  getUpload: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        uploadId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The upload */
      200: {
        headers: {
          /** @description The protocol version */
          'Tus-Resumable': '1.0.0';
          /** @description `1` while the length is not known yet */
          'Upload-Defer-Length'?: '1';
          /** @description When an idle upload is removed (RFC 9110 date) */
          'Upload-Expires'?: string;
          /** @description Once complete: the image being imported */
          'Upload-Image-Id'?: string;
          /** @description The whole size (absent while deferred) */
          'Upload-Length'?: number;
          /** @description Bytes stored so far */
          'Upload-Offset': number;
          /** @description Once complete: its `import` task */
          'Upload-Task-Id'?: string;
          [name: string]: unknown;
        };
        content: {
          'application/json': {
            /** Format: date-time */
            expiresAt: string;
            id: string;
            imageId: string | null;
            lengthBytes: number | null;
            metadata: {
              [key: string]: string;
            };
            offsetBytes: number;
            taskId: string | null;
          };
        };
      };
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      500: components['responses']['Problem500'];
    };
  };
  terminateUpload: {
    parameters: {
      query?: never;
      header: {
        'Tus-Resumable': '1.0.0';
      };
      path: {
        uploadId: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Removed */
      204: {
        headers: {
          /** @description The protocol version */
          'Tus-Resumable': '1.0.0';
          [name: string]: unknown;
        };
        content?: never;
      };
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
    };
  };
  writeUpload: {
    parameters: {
      query?: never;
      header: {
        'Tus-Resumable': '1.0.0';
        /** @description `<sha1|sha256|md5> <base64 digest>` of this piece */
        'Upload-Checksum'?: string;
        /** @description Sets a deferred length */
        'Upload-Length'?: number;
        'Upload-Offset': number;
      };
      path: {
        uploadId: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        'application/offset+octet-stream': string;
      };
    };
    responses: {
      /** @description Stored; `Upload-Offset` is the new offset */
      204: {
        headers: {
          /** @description The protocol version */
          'Tus-Resumable': '1.0.0';
          /** @description `1` while the length is not known yet */
          'Upload-Defer-Length'?: '1';
          /** @description When an idle upload is removed (RFC 9110 date) */
          'Upload-Expires'?: string;
          /** @description Once complete: the image being imported */
          'Upload-Image-Id'?: string;
          /** @description The whole size (absent while deferred) */
          'Upload-Length'?: number;
          /** @description Bytes stored so far */
          'Upload-Offset': number;
          /** @description Once complete: its `import` task */
          'Upload-Task-Id'?: string;
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      404: components['responses']['Problem404'];
      409: components['responses']['Problem409'];
      /** @description Another protocol version */
      412: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      413: components['responses']['Problem413'];
      415: components['responses']['Problem415'];
      /** @description The piece does not match `Upload-Checksum` (`CHECKSUM_MISMATCH`); nothing of it was kept */
      460: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      500: components['responses']['Problem500'];
      507: components['responses']['Problem507'];
    };
  };
  myUsageReport: {
    parameters: {
      query: {
        from: string;
        to: string;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The report; amounts are decimal strings */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          'application/json': components['schemas']['UsageReport'];
        };
      };
      400: components['responses']['Problem400'];
      401: components['responses']['Problem401'];
      500: components['responses']['Problem500'];
      502: components['responses']['Problem502'];
      503: components['responses']['Problem503'];
      504: components['responses']['Problem504'];
    };
  };
}

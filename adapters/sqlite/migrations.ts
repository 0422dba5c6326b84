/**
 * The SQLite schema, as versioned migrations. A released version's statements never change;
 * a schema change is a new version appended to the list. Timestamps are integer milliseconds
 * since the epoch, booleans 0/1, JSON as text; tables are STRICT.
 * @module
 */
import type { Migration } from '../sql-common/migrations';

/** Every SQLite migration, in order. */
export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    statements: [
      `CREATE TABLE ii_images (
        id TEXT NOT NULL PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        os_type TEXT,
        cloud_init INTEGER NOT NULL CHECK (cloud_init IN (0, 1)),
        media_group_id TEXT,
        account_id TEXT,
        source_instance_id TEXT,
        source_instance_name TEXT,
        location_id TEXT,
        storage_id TEXT NOT NULL,
        hypervisor_id TEXT,
        file_key TEXT NOT NULL,
        format TEXT NOT NULL,
        size_bytes INTEGER,
        virtual_size_bytes INTEGER,
        sha256 TEXT,
        consistency TEXT,
        status TEXT NOT NULL,
        status_reason TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        available_at INTEGER,
        deleted_at INTEGER
      ) STRICT`,
      `CREATE INDEX ii_images_account_created ON ii_images (account_id, created_at, id)`,
      `CREATE INDEX ii_images_created ON ii_images (created_at, id)`,
      `CREATE INDEX ii_images_storage ON ii_images (storage_id)`,
      `CREATE INDEX ii_images_source_instance ON ii_images (source_instance_id)`,
      `CREATE TABLE ii_storages (
        id TEXT NOT NULL PRIMARY KEY,
        name TEXT NOT NULL,
        driver TEXT NOT NULL,
        config TEXT NOT NULL,
        purpose TEXT NOT NULL,
        enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT`,
      `CREATE TABLE ii_storage_bindings (
        storage_id TEXT NOT NULL REFERENCES ii_storages (id) ON DELETE CASCADE,
        hypervisor_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (storage_id, hypervisor_id)
      ) STRICT`,
      `CREATE INDEX ii_storage_bindings_hypervisor ON ii_storage_bindings (hypervisor_id)`,
      `CREATE TABLE ii_media_groups (
        id TEXT NOT NULL PRIMARY KEY,
        name TEXT NOT NULL,
        customer_visible INTEGER NOT NULL CHECK (customer_visible IN (0, 1)),
        sort_order INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT`,
      `CREATE TABLE ii_isos (
        id TEXT NOT NULL PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        storage_id TEXT NOT NULL,
        file_key TEXT NOT NULL,
        size_bytes INTEGER,
        sha256 TEXT,
        customer_visible INTEGER NOT NULL CHECK (customer_visible IN (0, 1)),
        status TEXT NOT NULL,
        status_reason TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT`,
      `CREATE INDEX ii_isos_name ON ii_isos (name, id)`,
      `CREATE TABLE ii_tasks (
        id TEXT NOT NULL PRIMARY KEY,
        type TEXT NOT NULL,
        subject_kind TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        account_id TEXT,
        hypervisor_id TEXT,
        status TEXT NOT NULL,
        progress TEXT NOT NULL,
        error_code TEXT,
        error_message TEXT,
        attempts INTEGER NOT NULL,
        heartbeat_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER
      ) STRICT`,
      `CREATE INDEX ii_tasks_created ON ii_tasks (created_at, id)`,
      `CREATE INDEX ii_tasks_account_created ON ii_tasks (account_id, created_at, id)`,
      `CREATE INDEX ii_tasks_subject ON ii_tasks (subject_id)`,
      `CREATE INDEX ii_tasks_status ON ii_tasks (status, heartbeat_at)`,
      `CREATE TABLE ii_usage_intervals (
        id TEXT NOT NULL PRIMARY KEY,
        image_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        location_id TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        rate TEXT NOT NULL,
        starts_at INTEGER NOT NULL,
        ends_at INTEGER
      ) STRICT`,
      `CREATE INDEX ii_usage_intervals_start ON ii_usage_intervals (starts_at, id)`,
      `CREATE INDEX ii_usage_intervals_account ON ii_usage_intervals (account_id, starts_at)`,
      `CREATE INDEX ii_usage_intervals_image ON ii_usage_intervals (image_id)`,
      `CREATE TABLE ii_location_settings (
        location_id TEXT NOT NULL PRIMARY KEY,
        images_enabled INTEGER NOT NULL CHECK (images_enabled IN (0, 1)),
        price_per_gb_month TEXT NOT NULL,
        currency TEXT NOT NULL,
        default_image_limit INTEGER,
        updated_at INTEGER NOT NULL
      ) STRICT`,
      `CREATE TABLE ii_account_limits (
        account_id TEXT NOT NULL PRIMARY KEY,
        image_limit INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT`,
    ],
  },
  {
    version: 2,
    name: 'images keep the compress choice of their capture',
    statements: [`ALTER TABLE ii_images ADD COLUMN compressed INTEGER CHECK (compressed IN (0, 1))`],
  },
  {
    version: 3,
    name: 'tasks record the worker that holds them and an overall percentage',
    statements: [
      `ALTER TABLE ii_tasks ADD COLUMN worker_id TEXT`,
      `ALTER TABLE ii_tasks ADD COLUMN incarnation_id TEXT`,
      `UPDATE ii_tasks SET progress = json_set(progress, '$.percent', CASE WHEN status = 'completed' THEN 100 ELSE 0 END) WHERE json_type(progress, '$.percent') IS NULL`,
    ],
  },
  {
    version: 4,
    name: 'suspended and closed accounts; images remember that their source instance was deleted',
    statements: [
      `CREATE TABLE ii_account_states (
        account_id TEXT NOT NULL PRIMARY KEY,
        status TEXT NOT NULL,
        since INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT`,
      `ALTER TABLE ii_images ADD COLUMN source_instance_deleted_at INTEGER`,
    ],
  },
  {
    version: 5,
    name: 'image shares and ownership transfers',
    statements: [
      `CREATE TABLE ii_image_shares (
        id TEXT NOT NULL PRIMARY KEY,
        image_id TEXT NOT NULL,
        owner_account_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        decided_at INTEGER
      ) STRICT`,
      `CREATE UNIQUE INDEX ii_image_shares_open ON ii_image_shares (image_id, account_id) WHERE status IN ('pending', 'accepted')`,
      `CREATE INDEX ii_image_shares_account ON ii_image_shares (account_id, created_at, id)`,
      `CREATE INDEX ii_image_shares_owner ON ii_image_shares (owner_account_id, created_at, id)`,
      `CREATE TABLE ii_image_transfers (
        id TEXT NOT NULL PRIMARY KEY,
        image_id TEXT NOT NULL,
        from_account_id TEXT NOT NULL,
        to_account_id TEXT NOT NULL,
        status TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        decided_at INTEGER
      ) STRICT`,
      `CREATE UNIQUE INDEX ii_image_transfers_pending ON ii_image_transfers (image_id) WHERE status = 'pending'`,
      `CREATE INDEX ii_image_transfers_to ON ii_image_transfers (to_account_id, created_at, id)`,
      `CREATE INDEX ii_image_transfers_from ON ii_image_transfers (from_account_id, created_at, id)`,
    ],
  },
  {
    version: 6,
    name: 'storages choose their layout (files or chunks)',
    statements: [`ALTER TABLE ii_storages ADD COLUMN layout TEXT`, `ALTER TABLE ii_storages ADD COLUMN chunks TEXT`],
  },
  {
    version: 7,
    name: 'locations say whether customers may import images from a URL',
    statements: [
      `ALTER TABLE ii_location_settings ADD COLUMN url_import_enabled INTEGER NOT NULL DEFAULT 0 CHECK (url_import_enabled IN (0, 1))`,
    ],
  },
  {
    version: 8,
    name: 'event outbox: events recorded with the writes that cause them',
    statements: [
      `CREATE TABLE ii_outbox (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        event_key TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        available_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        claimed_by TEXT,
        lease_until INTEGER,
        delivered_at INTEGER,
        last_error TEXT
      ) STRICT`,
      `CREATE INDEX ii_outbox_undelivered ON ii_outbox (event_key, seq) WHERE delivered_at IS NULL`,
      `CREATE INDEX ii_outbox_delivered ON ii_outbox (delivered_at) WHERE delivered_at IS NOT NULL`,
    ],
  },
  {
    version: 9,
    name: 'protected images, byte caps and capability metadata',
    statements: [
      `ALTER TABLE ii_images ADD COLUMN protected INTEGER CHECK (protected IN (0, 1))`,
      `ALTER TABLE ii_images ADD COLUMN min_disk_bytes INTEGER`,
      `ALTER TABLE ii_images ADD COLUMN firmware TEXT`,
      `ALTER TABLE ii_images ADD COLUMN architecture TEXT`,
      `ALTER TABLE ii_location_settings ADD COLUMN default_image_bytes_limit INTEGER`,
      `ALTER TABLE ii_account_limits ADD COLUMN image_bytes_limit INTEGER`,
    ],
  },
  {
    version: 11,
    name: 'bytes an import holds against the byte cap',
    statements: [`ALTER TABLE ii_images ADD COLUMN reserved_bytes INTEGER`],
  },
  {
    version: 12,
    name: 'tasks name the storage they write into',
    statements: [`ALTER TABLE ii_tasks ADD COLUMN storage_id TEXT`],
  },
];

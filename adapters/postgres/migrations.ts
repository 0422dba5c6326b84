/**
 * The PostgreSQL schema, as versioned migrations. A released version's statements never change;
 * a schema change is a new version appended to the list. Statements are unqualified: the runner
 * sets the search path to the target schema for the migration's transaction. Timestamps are
 * `timestamptz(3)` (exact to the millisecond), sizes `bigint`, JSON `jsonb`; text that is sorted
 * or compared uses the "C" collation, so orderings and cursors do not depend on the server's locale.
 * @module
 */
import type { Migration } from '../sql-common/migrations';

/** Every PostgreSQL migration, in order. */
export const postgresMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    statements: [
      `CREATE TABLE ii_images (
        id text COLLATE "C" NOT NULL PRIMARY KEY,
        kind text NOT NULL,
        name text COLLATE "C" NOT NULL,
        description text NOT NULL,
        os_type text,
        cloud_init boolean NOT NULL,
        media_group_id text COLLATE "C",
        account_id text COLLATE "C",
        source_instance_id text COLLATE "C",
        source_instance_name text,
        location_id text COLLATE "C",
        storage_id text COLLATE "C" NOT NULL,
        hypervisor_id text COLLATE "C",
        file_key text NOT NULL,
        format text NOT NULL,
        size_bytes bigint,
        virtual_size_bytes bigint,
        sha256 text,
        consistency text,
        status text NOT NULL,
        status_reason jsonb,
        created_at timestamptz(3) NOT NULL,
        updated_at timestamptz(3) NOT NULL,
        available_at timestamptz(3),
        deleted_at timestamptz(3)
      )`,
      `CREATE INDEX ii_images_account_created ON ii_images (account_id, created_at, id)`,
      `CREATE INDEX ii_images_created ON ii_images (created_at, id)`,
      `CREATE INDEX ii_images_storage ON ii_images (storage_id)`,
      `CREATE INDEX ii_images_source_instance ON ii_images (source_instance_id)`,
      `CREATE TABLE ii_storages (
        id text COLLATE "C" NOT NULL PRIMARY KEY,
        name text COLLATE "C" NOT NULL,
        driver text NOT NULL,
        config jsonb NOT NULL,
        purpose text NOT NULL,
        enabled boolean NOT NULL,
        created_at timestamptz(3) NOT NULL,
        updated_at timestamptz(3) NOT NULL
      )`,
      `CREATE TABLE ii_storage_bindings (
        storage_id text COLLATE "C" NOT NULL REFERENCES ii_storages (id) ON DELETE CASCADE,
        hypervisor_id text COLLATE "C" NOT NULL,
        created_at timestamptz(3) NOT NULL,
        PRIMARY KEY (storage_id, hypervisor_id)
      )`,
      `CREATE INDEX ii_storage_bindings_hypervisor ON ii_storage_bindings (hypervisor_id)`,
      `CREATE TABLE ii_media_groups (
        id text COLLATE "C" NOT NULL PRIMARY KEY,
        name text COLLATE "C" NOT NULL,
        customer_visible boolean NOT NULL,
        sort_order integer NOT NULL,
        created_at timestamptz(3) NOT NULL,
        updated_at timestamptz(3) NOT NULL
      )`,
      `CREATE TABLE ii_isos (
        id text COLLATE "C" NOT NULL PRIMARY KEY,
        name text COLLATE "C" NOT NULL,
        description text NOT NULL,
        storage_id text COLLATE "C" NOT NULL,
        file_key text NOT NULL,
        size_bytes bigint,
        sha256 text,
        customer_visible boolean NOT NULL,
        status text NOT NULL,
        status_reason jsonb,
        created_at timestamptz(3) NOT NULL,
        updated_at timestamptz(3) NOT NULL
      )`,
      `CREATE INDEX ii_isos_name ON ii_isos (name, id)`,
      `CREATE TABLE ii_tasks (
        id text COLLATE "C" NOT NULL PRIMARY KEY,
        type text NOT NULL,
        subject_kind text NOT NULL,
        subject_id text COLLATE "C" NOT NULL,
        account_id text COLLATE "C",
        hypervisor_id text COLLATE "C",
        status text NOT NULL,
        progress jsonb NOT NULL,
        error_code text,
        error_message text,
        attempts integer NOT NULL,
        heartbeat_at timestamptz(3),
        created_at timestamptz(3) NOT NULL,
        updated_at timestamptz(3) NOT NULL,
        started_at timestamptz(3),
        finished_at timestamptz(3)
      )`,
      `CREATE INDEX ii_tasks_created ON ii_tasks (created_at, id)`,
      `CREATE INDEX ii_tasks_account_created ON ii_tasks (account_id, created_at, id)`,
      `CREATE INDEX ii_tasks_subject ON ii_tasks (subject_id)`,
      `CREATE INDEX ii_tasks_running ON ii_tasks (heartbeat_at) WHERE status = 'running'`,
      `CREATE TABLE ii_usage_intervals (
        id text COLLATE "C" NOT NULL PRIMARY KEY,
        image_id text COLLATE "C" NOT NULL,
        account_id text COLLATE "C" NOT NULL,
        location_id text COLLATE "C" NOT NULL,
        size_bytes bigint NOT NULL,
        rate text NOT NULL,
        starts_at timestamptz(3) NOT NULL,
        ends_at timestamptz(3)
      )`,
      `CREATE INDEX ii_usage_intervals_start ON ii_usage_intervals (starts_at, id)`,
      `CREATE INDEX ii_usage_intervals_account ON ii_usage_intervals (account_id, starts_at)`,
      `CREATE INDEX ii_usage_intervals_image ON ii_usage_intervals (image_id)`,
      `CREATE TABLE ii_location_settings (
        location_id text COLLATE "C" NOT NULL PRIMARY KEY,
        images_enabled boolean NOT NULL,
        price_per_gb_month text NOT NULL,
        currency text NOT NULL,
        default_image_limit integer,
        updated_at timestamptz(3) NOT NULL
      )`,
      `CREATE TABLE ii_account_limits (
        account_id text COLLATE "C" NOT NULL PRIMARY KEY,
        image_limit integer NOT NULL,
        updated_at timestamptz(3) NOT NULL
      )`,
    ],
  },
  {
    version: 2,
    name: 'images keep the compress choice of their capture',
    statements: [`ALTER TABLE ii_images ADD COLUMN compressed boolean`],
  },
  {
    version: 3,
    name: 'tasks record the worker that holds them and an overall percentage',
    statements: [
      `ALTER TABLE ii_tasks ADD COLUMN worker_id text`,
      `ALTER TABLE ii_tasks ADD COLUMN incarnation_id text`,
      `UPDATE ii_tasks SET progress = jsonb_set(progress, '{percent}', to_jsonb(CASE WHEN status = 'completed' THEN 100 ELSE 0 END)) WHERE NOT (progress ? 'percent')`,
    ],
  },
  {
    version: 4,
    name: 'suspended and closed accounts; images remember that their source instance was deleted',
    statements: [
      `CREATE TABLE ii_account_states (
        account_id text COLLATE "C" NOT NULL PRIMARY KEY,
        status text NOT NULL,
        since timestamptz(3) NOT NULL,
        updated_at timestamptz(3) NOT NULL
      )`,
      `ALTER TABLE ii_images ADD COLUMN source_instance_deleted_at timestamptz(3)`,
    ],
  },
  {
    version: 5,
    name: 'image shares and ownership transfers',
    statements: [
      `CREATE TABLE ii_image_shares (
        id text COLLATE "C" NOT NULL PRIMARY KEY,
        image_id text COLLATE "C" NOT NULL,
        owner_account_id text COLLATE "C" NOT NULL,
        account_id text COLLATE "C" NOT NULL,
        status text NOT NULL,
        created_at timestamptz(3) NOT NULL,
        updated_at timestamptz(3) NOT NULL,
        decided_at timestamptz(3)
      )`,
      `CREATE UNIQUE INDEX ii_image_shares_open ON ii_image_shares (image_id, account_id) WHERE status IN ('pending', 'accepted')`,
      `CREATE INDEX ii_image_shares_account ON ii_image_shares (account_id, created_at, id)`,
      `CREATE INDEX ii_image_shares_owner ON ii_image_shares (owner_account_id, created_at, id)`,
      `CREATE TABLE ii_image_transfers (
        id text COLLATE "C" NOT NULL PRIMARY KEY,
        image_id text COLLATE "C" NOT NULL,
        from_account_id text COLLATE "C" NOT NULL,
        to_account_id text COLLATE "C" NOT NULL,
        status text NOT NULL,
        expires_at timestamptz(3) NOT NULL,
        created_at timestamptz(3) NOT NULL,
        updated_at timestamptz(3) NOT NULL,
        decided_at timestamptz(3)
      )`,
      `CREATE UNIQUE INDEX ii_image_transfers_pending ON ii_image_transfers (image_id) WHERE status = 'pending'`,
      `CREATE INDEX ii_image_transfers_to ON ii_image_transfers (to_account_id, created_at, id)`,
      `CREATE INDEX ii_image_transfers_from ON ii_image_transfers (from_account_id, created_at, id)`,
    ],
  },
  {
    version: 6,
    name: 'storages choose their layout (files or chunks)',
    statements: [`ALTER TABLE ii_storages ADD COLUMN layout text`, `ALTER TABLE ii_storages ADD COLUMN chunks jsonb`],
  },
  {
    version: 7,
    name: 'locations say whether customers may import images from a URL',
    statements: [`ALTER TABLE ii_location_settings ADD COLUMN url_import_enabled boolean NOT NULL DEFAULT false`],
  },
  {
    version: 8,
    name: 'event outbox: events recorded with the writes that cause them',
    statements: [
      `CREATE TABLE ii_outbox (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text COLLATE "C" NOT NULL UNIQUE,
        type text NOT NULL,
        event_key text COLLATE "C" NOT NULL,
        data jsonb NOT NULL,
        created_at timestamptz(3) NOT NULL,
        available_at timestamptz(3) NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        claimed_by text,
        lease_until timestamptz(3),
        delivered_at timestamptz(3),
        last_error text
      )`,
      `CREATE INDEX ii_outbox_undelivered ON ii_outbox (event_key, seq) WHERE delivered_at IS NULL`,
      `CREATE INDEX ii_outbox_delivered ON ii_outbox (delivered_at) WHERE delivered_at IS NOT NULL`,
    ],
  },
  {
    version: 9,
    name: 'protected images, byte caps and capability metadata',
    statements: [
      `ALTER TABLE ii_images ADD COLUMN protected boolean`,
      `ALTER TABLE ii_images ADD COLUMN min_disk_bytes bigint`,
      `ALTER TABLE ii_images ADD COLUMN firmware text`,
      `ALTER TABLE ii_images ADD COLUMN architecture text`,
      `ALTER TABLE ii_location_settings ADD COLUMN default_image_bytes_limit bigint`,
      `ALTER TABLE ii_account_limits ADD COLUMN image_bytes_limit bigint`,
    ],
  },
  {
    version: 11,
    name: 'bytes an import holds against the byte cap',
    statements: [`ALTER TABLE ii_images ADD COLUMN reserved_bytes bigint`],
  },
  {
    version: 12,
    name: 'tasks name the storage they write into',
    statements: [`ALTER TABLE ii_tasks ADD COLUMN storage_id text`],
  },
];

/**
 * The pretend host panel's own database. The panel already had tables for customers, servers
 * and nodes (not shown); to embed instance-images it added the `panel_*image*` tables below, in
 * ITS naming: customers (our `accountId`), servers (`instanceId`), nodes (`hypervisorId`),
 * regions (`locationId`), `title` instead of `name`, `state` instead of `status`, timestamps as
 * integer milliseconds in `*_on` columns, booleans as `is_*` 0/1 columns, and one key/value
 * `panel_settings` table shared with the rest of the panel.
 *
 * A real panel puts these statements in its own migrations; the SDK never creates or alters them.
 * @module
 */
import Database from 'better-sqlite3';

/** The panel's tables that hold instance-images data, plus its `notifications` table. */
export const PANEL_SCHEMA = `
CREATE TABLE IF NOT EXISTS panel_vm_images (
  id              TEXT PRIMARY KEY,
  kind            TEXT NOT NULL,            -- 'custom' (a customer's) | 'stock' (an OS template)
  title           TEXT NOT NULL,
  notes           TEXT NOT NULL DEFAULT '',
  os_family       TEXT,
  has_cloud_init  INTEGER NOT NULL DEFAULT 0,
  os_group_id     TEXT,                     -- panel_os_groups.id (stock images)
  customer_id     TEXT,                     -- owner (custom images)
  server_id       TEXT,                     -- the server the disk was captured from
  server_name     TEXT,
  region_id       TEXT,
  store_id        TEXT NOT NULL,            -- panel_image_stores.id
  node_id         TEXT,                     -- for per-node stores: the node holding the file
  file_key        TEXT NOT NULL,
  disk_format     TEXT NOT NULL,
  file_bytes      INTEGER,
  disk_bytes      INTEGER,
  checksum_sha256 TEXT,
  consistency     TEXT,
  is_compressed   INTEGER,                  -- Image.compressed: 0/1, NULL when not recorded
  server_gone_on  INTEGER,                  -- Image.sourceInstanceDeletedAt, NULL while the server exists
  is_protected    INTEGER,                  -- Image.protected: 0/1, NULL when never set
  min_disk_bytes  INTEGER,                  -- Image.minDiskBytes (capability metadata), NULL when unknown
  boot_firmware   TEXT,                     -- Image.firmware: 'bios' | 'uefi', NULL when unknown
  cpu_arch        TEXT,                     -- Image.architecture, NULL when unknown
  held_bytes      INTEGER,                  -- Image.reservedBytes: what an import holds against the byte cap
  state           TEXT NOT NULL,
  state_code      TEXT,                     -- why it is in that state (code + message)
  state_message   TEXT,
  created_on      INTEGER NOT NULL,
  changed_on      INTEGER NOT NULL,
  ready_on        INTEGER,
  removed_on      INTEGER
);
CREATE INDEX IF NOT EXISTS panel_vm_images_by_customer ON panel_vm_images (customer_id, state);
CREATE INDEX IF NOT EXISTS panel_vm_images_by_created ON panel_vm_images (created_on, id);

CREATE TABLE IF NOT EXISTS panel_image_stores (
  id          TEXT PRIMARY KEY,
  title       TEXT NOT NULL,
  driver      TEXT NOT NULL,
  config_json TEXT NOT NULL,
  purpose     TEXT NOT NULL,
  is_enabled  INTEGER NOT NULL,
  layout      TEXT,                      -- ImageStorage.layout: files/chunks, NULL when not recorded
  chunks_json TEXT,                      -- ImageStorage.chunks as JSON, NULL when not recorded
  created_on  INTEGER NOT NULL,
  changed_on  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS panel_image_store_nodes (
  store_id   TEXT NOT NULL,
  node_id    TEXT NOT NULL,
  created_on INTEGER NOT NULL,
  PRIMARY KEY (store_id, node_id)
);

CREATE TABLE IF NOT EXISTS panel_os_groups (
  id         TEXT PRIMARY KEY,
  title      TEXT NOT NULL,
  is_visible INTEGER NOT NULL,
  sort_order INTEGER NOT NULL,
  created_on INTEGER NOT NULL,
  changed_on INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS panel_isos (
  id              TEXT PRIMARY KEY,
  title           TEXT NOT NULL,
  notes           TEXT NOT NULL DEFAULT '',
  store_id        TEXT NOT NULL,
  file_key        TEXT NOT NULL,
  file_bytes      INTEGER,
  checksum_sha256 TEXT,
  is_visible      INTEGER NOT NULL,
  state           TEXT NOT NULL,
  state_code      TEXT,
  state_message   TEXT,
  created_on      INTEGER NOT NULL,
  changed_on      INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS panel_image_tasks (
  id                   TEXT PRIMARY KEY,
  task_type            TEXT NOT NULL,
  subject_kind         TEXT NOT NULL,
  subject_id           TEXT NOT NULL,
  customer_id          TEXT,
  node_id              TEXT,
  state                TEXT NOT NULL,
  progress_step        TEXT NOT NULL,
  progress_percent     INTEGER NOT NULL,
  progress_bytes_done  INTEGER NOT NULL,
  progress_bytes_total INTEGER,
  error_code           TEXT,
  error_message        TEXT,
  attempts             INTEGER NOT NULL,
  worker_id            TEXT,
  store_id             TEXT,                 -- Task.storageId: NULL when the task names no storage
  incarnation_id       TEXT,
  heartbeat_on         INTEGER,
  created_on           INTEGER NOT NULL,
  changed_on           INTEGER NOT NULL,
  started_on           INTEGER,
  finished_on          INTEGER
);
CREATE INDEX IF NOT EXISTS panel_image_tasks_by_created ON panel_image_tasks (created_on, id);

-- The billing ledger: one row per image, size and rate; ends_on is NULL while still billed.
CREATE TABLE IF NOT EXISTS panel_image_billing (
  id          TEXT PRIMARY KEY,
  image_id    TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  region_id   TEXT NOT NULL,
  file_bytes  INTEGER NOT NULL,
  rate        TEXT NOT NULL,                -- decimal string, never a float
  starts_on   INTEGER NOT NULL,
  ends_on     INTEGER
);
CREATE INDEX IF NOT EXISTS panel_image_billing_by_start ON panel_image_billing (starts_on, id);

-- Shares of a customer's image with other customers, and offers to give an image away.
CREATE TABLE IF NOT EXISTS panel_image_shares (
  id                TEXT PRIMARY KEY,
  image_id          TEXT NOT NULL,
  owner_customer_id TEXT NOT NULL,
  customer_id       TEXT NOT NULL,          -- the recipient
  state             TEXT NOT NULL,          -- pending | accepted | rejected | revoked
  created_on        INTEGER NOT NULL,
  changed_on        INTEGER NOT NULL,
  decided_on        INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS panel_image_shares_open ON panel_image_shares (image_id, customer_id) WHERE state IN ('pending', 'accepted');
CREATE TABLE IF NOT EXISTS panel_image_handovers (
  id                TEXT PRIMARY KEY,
  image_id          TEXT NOT NULL,
  from_customer_id  TEXT NOT NULL,
  to_customer_id    TEXT NOT NULL,
  state             TEXT NOT NULL,          -- pending | accepted | rejected | cancelled | expired
  expires_on        INTEGER NOT NULL,
  created_on        INTEGER NOT NULL,
  changed_on        INTEGER NOT NULL,
  decided_on        INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS panel_image_handovers_pending ON panel_image_handovers (image_id) WHERE state = 'pending';

-- The panel's general key/value settings; instance-images uses the 'images.*' names.
CREATE TABLE IF NOT EXISTS panel_settings (
  name       TEXT PRIMARY KEY,
  value      TEXT NOT NULL,                 -- JSON
  changed_on INTEGER NOT NULL
);

-- The panel's own notification centre (bell icon, e-mail digests). Not an SDK table.
CREATE TABLE IF NOT EXISTS notifications (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  customer_id TEXT,                         -- NULL: for the operators
  topic       TEXT NOT NULL,
  message     TEXT NOT NULL,
  dedupe_key  TEXT NOT NULL UNIQUE,         -- one notification per event occurrence
  created_on  INTEGER NOT NULL,
  read_on     INTEGER
);

-- The SDK's events, recorded with the writes that cause them until delivered (the outbox).
CREATE TABLE IF NOT EXISTS panel_image_events (
  seq          INTEGER PRIMARY KEY,
  id           TEXT NOT NULL UNIQUE,
  event_type   TEXT NOT NULL,
  event_key    TEXT NOT NULL,            -- events of one key are delivered in order
  payload      TEXT NOT NULL,            -- JSON
  created_on   INTEGER NOT NULL,
  available_on INTEGER NOT NULL,
  attempts     INTEGER NOT NULL DEFAULT 0,
  claimed_by   TEXT,
  lease_until  INTEGER,
  delivered_on INTEGER,
  last_error   TEXT
);
CREATE INDEX IF NOT EXISTS panel_image_events_undelivered ON panel_image_events (event_key, seq) WHERE delivered_on IS NULL;
`;

/**
 * Opens (or creates) the panel's database and makes sure the tables above exist. A file database
 * uses WAL and waits up to 5 s for another writer, so several panel processes can share it.
 */
export function openPanelDatabase(filename = ':memory:'): Database.Database {
  const db = new Database(filename);
  if (filename !== ':memory:') db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.exec(PANEL_SCHEMA);
  upgradePanelSchema(db);
  return db;
}

/**
 * Brings a panel database created by an older release up to date: a field the SDK added later
 * (`Image.compressed`, `Image.sourceInstanceDeletedAt`, `ImageStorage.layout` and `.chunks`, `Task.storageId`) becomes a nullable
 * column, so the rows written before read back without it.
 * A real panel does this in its own migration tool; the check makes running it twice harmless.
 */
export function upgradePanelSchema(db: Database.Database): void {
  const columns = (db.prepare('SELECT name FROM pragma_table_info(?)').all('panel_vm_images') as { name: string }[]).map((c) => c.name);
  if (!columns.includes('is_compressed')) db.exec('ALTER TABLE panel_vm_images ADD COLUMN is_compressed INTEGER');
  if (!columns.includes('server_gone_on')) db.exec('ALTER TABLE panel_vm_images ADD COLUMN server_gone_on INTEGER');
  if (!columns.includes('held_bytes')) db.exec('ALTER TABLE panel_vm_images ADD COLUMN held_bytes INTEGER');
  const storeColumns = (db.prepare('SELECT name FROM pragma_table_info(?)').all('panel_image_stores') as { name: string }[]).map(
    (c) => c.name,
  );
  if (!storeColumns.includes('layout')) db.exec('ALTER TABLE panel_image_stores ADD COLUMN layout TEXT');
  if (!storeColumns.includes('chunks_json')) db.exec('ALTER TABLE panel_image_stores ADD COLUMN chunks_json TEXT');
  const taskColumns = (db.prepare('SELECT name FROM pragma_table_info(?)').all('panel_image_tasks') as { name: string }[]).map(
    (c) => c.name,
  );
  if (!taskColumns.includes('store_id')) db.exec('ALTER TABLE panel_image_tasks ADD COLUMN store_id TEXT');
}

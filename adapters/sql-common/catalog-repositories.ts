/**
 * The catalog's repositories over SQL (media groups and ISOs), and the small helpers the other SQL
 * repositories share with them.
 * @module
 */
import type { Page } from '../../src/model/common';
import type { Iso } from '../../src/model/iso';
import type { MediaGroup } from '../../src/model/media-group';
import type { IsoRepository, ListPage, MediaGroupRepository } from '../../src/ports/repositories';
import type { SqlParams } from './dialect';
import type { SqlTable } from './sql-table';

/** Fields a patch never changes on a plain record. */
export const RECORD_IMMUTABLE = new Set(['id', 'createdAt']);

/** Adds `column = value` to `where` when `value` is defined. */
export function equals(where: string[], params: SqlParams, column: string, value: string | boolean | undefined): void {
  if (value === undefined) return;
  where.push(`${column} = ${params.add(value, typeof value === 'boolean' ? 'boolean' : 'text')}`);
}

/** {@link MediaGroupRepository} over SQL. */
export class SqlMediaGroupRepository implements MediaGroupRepository {
  constructor(private readonly table: SqlTable<MediaGroup>) {}

  async get(id: string): Promise<MediaGroup | null> {
    return this.table.getBy('id', id);
  }

  async list(filter: { customerVisible?: boolean } = {}): Promise<MediaGroup[]> {
    const params = this.table.params();
    const where: string[] = [];
    equals(where, params, this.table.col('customerVisible'), filter.customerVisible);
    return this.table.select(params, where, `${this.table.col('order')} ASC, name ASC, id ASC`);
  }

  async insert(group: MediaGroup): Promise<void> {
    await this.table.insert(group, group.id);
  }

  async update(id: string, patch: Partial<Omit<MediaGroup, 'id' | 'createdAt'>>, now: Date): Promise<MediaGroup | null> {
    return this.table.patch('id', id, patch, { immutable: RECORD_IMMUTABLE, now });
  }

  async delete(id: string): Promise<boolean> {
    return this.table.deleteBy('id', id);
  }
}

/** {@link IsoRepository} over SQL. */
export class SqlIsoRepository implements IsoRepository {
  constructor(private readonly table: SqlTable<Iso>) {}

  async get(id: string): Promise<Iso | null> {
    return this.table.getBy('id', id);
  }

  async list(
    filter: { customerVisible?: boolean; storageId?: string; status?: Iso['status'] } = {},
    page: ListPage = {},
  ): Promise<Page<Iso>> {
    const params = this.table.params();
    const where: string[] = [];
    equals(where, params, this.table.col('customerVisible'), filter.customerVisible);
    equals(where, params, this.table.col('storageId'), filter.storageId);
    equals(where, params, 'status', filter.status);
    return this.table.page(params, where, { field: 'name', direction: 'asc' }, page);
  }

  async insert(iso: Iso): Promise<void> {
    await this.table.insert(iso, iso.id);
  }

  async update(id: string, patch: Partial<Omit<Iso, 'id' | 'createdAt'>>, now: Date): Promise<Iso | null> {
    return this.table.patch('id', id, patch, { immutable: RECORD_IMMUTABLE, now });
  }

  async delete(id: string): Promise<boolean> {
    return this.table.deleteBy('id', id);
  }
}

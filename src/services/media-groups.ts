/**
 * Media groups (operator): the groups of the OS picker, with their visibility and order.
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError, notFound } from '../errors';
import { NameSchema } from '../model/common';
import type { MediaGroup } from '../model/media-group';
import { parseOrThrow } from '../util/validate';
import { checkActor, requireAdmin, type Actor } from './actor';
import type { ServiceContext } from './context';

/** Input of media group create/update. */
export const MediaGroupInputSchema = z.strictObject({
  name: NameSchema,
  customerVisible: z.boolean().default(true),
  order: z.number().int().min(-1_000_000).max(1_000_000).default(0),
});
/** Input of {@link CatalogService.createMediaGroup}. */
export type MediaGroupInput = z.input<typeof MediaGroupInputSchema>;

/** Media groups. Reached through `InstanceImages.catalog`. */
export class MediaGroupService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(private readonly ctx: ServiceContext) {}

  /** Lists media groups (customers: visible ones only). */
  async listMediaGroups(actor: Actor): Promise<MediaGroup[]> {
    checkActor(actor);
    return this.ctx.repos.mediaGroups.list(actor.kind === 'customer' ? { customerVisible: true } : {});
  }

  /** Creates a media group. */
  async createMediaGroup(actor: Actor, input: MediaGroupInput): Promise<MediaGroup> {
    requireAdmin(actor);
    const data = parseOrThrow(MediaGroupInputSchema, input, 'The media group');
    const now = this.ctx.now();
    const group: MediaGroup = { id: this.ctx.newId(), ...data, createdAt: now, updatedAt: now };
    await this.ctx.repos.mediaGroups.insert(group);
    return group;
  }

  /** Edits a media group (name, visibility, order). */
  async updateMediaGroup(actor: Actor, id: string, input: Partial<MediaGroupInput>): Promise<MediaGroup> {
    requireAdmin(actor);
    const data = parseOrThrow(MediaGroupInputSchema.partial(), input, 'The media group');
    const patch = Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined));
    const updated = await this.ctx.repos.mediaGroups.update(id, patch, this.ctx.now());
    if (!updated) throw notFound('Media group', id);
    return updated;
  }

  /** Deletes a media group; IN_USE while OS images still belong to it. */
  async deleteMediaGroup(actor: Actor, id: string): Promise<void> {
    requireAdmin(actor);
    if (!(await this.ctx.repos.mediaGroups.get(id))) throw notFound('Media group', id);
    const members = await this.ctx.repos.images.list({ kind: 'stock', mediaGroupId: id }, { limit: 1 });
    if (members.items.length > 0) throw new InstanceImagesError('IN_USE', 'The media group still has OS images; move or delete them first');
    await this.ctx.repos.mediaGroups.delete(id);
  }
}

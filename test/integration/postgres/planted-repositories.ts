/**
 * A broken PostgreSQL adapter planted to prove that the multi-process conformance case catches it
 * there too: our adapter with the capped insert rewritten the way a host might get it wrong, a
 * count and then an insert, with no lock (each statement on whichever pooled connection is free;
 * under READ COMMITTED nothing orders two servers' count-then-insert).
 */
import { createPostgresRepositories, type PostgresRepositories, type PostgresRepositoriesOptions } from '../../../adapters/postgres';
import { InstanceImagesError, type ImageRepository } from '../../../src';

/** Our PostgreSQL repositories with the read-then-insert cap. */
export async function openPlantedPostgresRepositories(options: PostgresRepositoriesOptions): Promise<PostgresRepositories> {
  const base = await createPostgresRepositories(options);
  const images: ImageRepository = Object.assign(Object.create(base.images) as ImageRepository, {
    insertIfUnderLimit: async (image, limit) => {
      if (await base.images.get(image.id)) throw new InstanceImagesError('CONFLICT', `Image ${image.id} already exists`);
      if ((await base.images.countActive(limit.accountId)) >= limit.max) return false;
      await base.images.insert(image);
      return true;
    },
  } satisfies Partial<ImageRepository>);
  return Object.assign(Object.create(base) as PostgresRepositories, { images });
}

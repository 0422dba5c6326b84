/**
 * The outbox cases of the conformance suite catch broken implementations: a transition that drops
 * its events, one that records them before its compare-and-set (a failed one leaves events), one
 * that records them after a write that already happened (a failing builder leaves the change),
 * and a claim that hands an event to two claimers.
 */
import { describe, expect, it } from 'vitest';
import { createMemoryRepositories } from '../../../src/memory';
import { runRepositoryCase } from '../../../src/testing';
import type { Image, ImagePatch, ImageStatus, OutboxEvents, OutboxRepository, Repositories } from '../../../src';

type Transition = (
  id: string,
  from: readonly ImageStatus[],
  to: ImageStatus,
  patch: ImagePatch,
  now: Date,
  events?: OutboxEvents<Image>,
) => Promise<Image | null>;

function withTransition(make: (repos: Repositories, inner: Transition) => Transition): Repositories {
  const repos = createMemoryRepositories();
  const inner = repos.images.transition.bind(repos.images) as Transition;
  const images = Object.create(repos.images) as Repositories['images'];
  images.transition = make(repos, inner);
  return { ...repos, images };
}

const ATOMIC = 'outbox: an image transition records its events with it; a failed compare-and-set records none';
const ROLLBACK = 'outbox: when its events cannot be recorded, the transition does not happen either';

describe('the outbox cases catch broken implementations', () => {
  it('a transition that drops its events', async () => {
    const broken = withTransition((_, inner) => (id, from, to, patch, now) => inner(id, from, to, patch, now));
    await expect(runRepositoryCase(ATOMIC, broken)).rejects.toThrow();
  });

  it('events recorded before the compare-and-set, whether or not it succeeds', async () => {
    const broken = withTransition((repos, inner) => async (id, from, to, patch, now, events) => {
      const current = await repos.images.get(id);
      if (events && current) await repos.outbox!.append(events({ ...current, status: to }), now);
      return inner(id, from, to, patch, now);
    });
    await expect(runRepositoryCase(ATOMIC, broken)).rejects.toThrow(/failed compare-and-set recorded events/);
  });

  it('events recorded after the write, in a second step', async () => {
    const broken = withTransition((repos, inner) => async (id, from, to, patch, now, events) => {
      const updated = await inner(id, from, to, patch, now);
      if (updated && events) await repos.outbox!.append(events(updated), now);
      return updated;
    });
    await expect(runRepositoryCase(ATOMIC, broken)).resolves.toBeUndefined();
    await expect(runRepositoryCase(ROLLBACK, broken)).rejects.toThrow(/status changed without its events/);
  });

  it('a claim that does not mark what it hands out', async () => {
    const repos = createMemoryRepositories();
    const outbox = repos.outbox!;
    const racy: OutboxRepository = Object.create(outbox) as OutboxRepository;
    racy.claim = async (claim) => {
      const seen = await outbox.claim({ ...claim, owner: 'peek', leaseMs: 0 });
      return seen.map((e) => ({ ...e, claimedBy: claim.owner, attempts: 1 }));
    };
    await expect(
      runRepositoryCase('outbox: concurrent claimers never get the same event, and together get every one', { ...repos, outbox: racy }),
    ).rejects.toThrow(/was claimed by/);
  });

  it('the memory implementation passes them all', async () => {
    await expect(runRepositoryCase(ATOMIC, createMemoryRepositories())).resolves.toBeUndefined();
    await expect(runRepositoryCase(ROLLBACK, createMemoryRepositories())).resolves.toBeUndefined();
  });
});

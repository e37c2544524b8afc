/**
 * The artifact store a service reads and writes through: the one its host hands it (an in-process run keeps
 * its Object Store keys as files under the run's output directory), else the router over its NATS
 * connection and sandbox.
 */
import { ArtifactRouter, type ArtifactStore, type ServiceContext } from '@rlhf/platform';

export function artifactStoreOf(ctx: ServiceContext): ArtifactStore {
  return ctx.artifacts ?? new ArtifactRouter(ctx.nats, ctx.sandbox);
}

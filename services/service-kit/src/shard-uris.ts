/**
 * A stage shard's own URIs, checked before any work: `input_uri` readable and `output_uri` writable under
 * the store's sandbox (PERMISSION_DENIED naming the field when outside the artifact roots, ALREADY_EXISTS
 * when something the platform did not make stands at the output, PERMISSION_DENIED when its directory
 * exists and the platform did not make it). Model refs in the params are checked where they are loaded
 * (model-artifacts.ts).
 */
import { type ArtifactStore, invalidArgument } from '@rlhf/platform';
import type { StageWork } from '@rlhf/proto';

export async function checkShardUris(store: ArtifactStore, work: StageWork): Promise<void> {
  if (work.inputUri === '') throw invalidArgument('input_uri', 'is required');
  if (work.outputUri === '') throw invalidArgument('output_uri', 'is required');
  await store.resolve(work.inputUri, 'input_uri', 'read');
  // A shard's output is a data file: it goes only into a new directory or one the platform made.
  await store.resolve(work.outputUri, 'output_uri', 'write-file');
}

/**
 * A stage shard's own URIs, checked before any work: `input_uri` readable and `output_uri` writable under
 * the store's sandbox (PERMISSION_DENIED naming the field when outside the artifact roots, ALREADY_EXISTS
 * when something the platform did not make stands at the output, or PERMISSION_DENIED when its directory
 * was not made by the platform). Model refs in the params are checked
 * where they are loaded (model-artifacts.ts).
 */
import { dirname } from 'node:path';
import { type ArtifactStore, invalidArgument, ownerOf, RlhfError } from '@rlhf/platform';
import type { StageWork } from '@rlhf/proto';

export async function checkShardUris(store: ArtifactStore, work: StageWork): Promise<void> {
  if (work.inputUri === '') throw invalidArgument('input_uri', 'is required');
  if (work.outputUri === '') throw invalidArgument('output_uri', 'is required');
  await store.resolve(work.inputUri, 'input_uri', 'read');
  const out = await store.resolve(work.outputUri, 'output_uri', 'write');
  // A shard's output is a data file: it goes only into a new directory or one the platform made.
  if (out.scheme === 'file' && (await ownerOf(dirname(out.path))) === 'foreign')
    throw new RlhfError(
      'PERMISSION_DENIED',
      `${work.outputUri} is inside a directory the platform did not make`,
      {
        field: 'output_uri',
        fix: 'write shard outputs under a new directory; the platform writes only into directories it made',
      },
    );
}

/**
 * The run record a stage worker looks for before it executes work (`rlhf run` and stage Jobs write it):
 * tests that publish StageWork by hand write one first, as a started run would have.
 */
import { type NatsConnection, openStateKv, runRecordKey } from '@rlhf/platform';

/** Writes the record of `namespace/run`; `epoch` is the run_uid its work must carry (unchecked without). */
export async function recordRun(
  nc: NatsConnection,
  run: string,
  namespace = 'default',
  epoch?: string,
): Promise<void> {
  const kv = await openStateKv(nc);
  const record = {
    specDigest: 'test',
    ...(epoch ? { epoch } : {}),
    phase: 'Running',
    message: '',
    updatedAt: new Date().toISOString(),
  };
  await kv.put(runRecordKey(namespace, run), new TextEncoder().encode(JSON.stringify(record)));
}

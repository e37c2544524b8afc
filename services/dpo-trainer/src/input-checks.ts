/**
 * Checks of a plan's inputs against the artifact store before a job is queued, so that a wrong URI is the
 * caller's immediate NOT_FOUND (or FAILED_PRECONDITION for a reward model given as a policy) rather than a
 * job failing minutes later: the models exist (and match a pinned digest), have a causal-LM head, and the
 * dataset exists. Only small objects are read (manifest digests and config.json).
 */
import { headTypeOf, parseLlamaConfig } from '@rlhf/ml-engine';
import { type ArtifactStore, asRlhfError, joinArtifactUri, RlhfError, sameDigest } from '@rlhf/platform';
import { modelVersion } from '@rlhf/service-kit';
import type { PlannedModel, TrainingPlan } from './training-plan.js';

/** Runs `fn`, re-labelling a store error about a generic `uri` field with the request's field. */
export async function asField<T>(field: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const known = asRlhfError(err);
    if (known && (known.field === undefined || known.field === 'uri' || known.field === 'model.uri')) {
      throw new RlhfError(known.code, known.message, {
        field,
        ...(known.fix === undefined ? {} : { fix: known.fix }),
        cause: err,
      });
    }
    throw err;
  }
}

/** The model's version, checked against its digest pin (FAILED_PRECONDITION on a replaced model). */
export async function checkedModelVersion(store: ArtifactStore, m: PlannedModel): Promise<string> {
  const version = await asField(`${m.field}.uri`, () => modelVersion(store, m.ref.uri));
  if (m.ref.digest !== '' && !sameDigest(m.ref.digest, version)) {
    throw new RlhfError(
      'FAILED_PRECONDITION',
      `the model at ${m.ref.uri} has digest ${version}, not the pinned ${m.ref.digest}`,
      { field: `${m.field}.digest`, fix: 'pin the current digest, or leave it empty to use what is stored' },
    );
  }
  return version;
}

async function checkPolicyModel(store: ArtifactStore, m: PlannedModel): Promise<void> {
  await checkedModelVersion(store, m);
  const field = `${m.field}.uri`;
  const config = await asField(field, async () =>
    parseLlamaConfig(
      JSON.parse(new TextDecoder().decode(await store.get(joinArtifactUri(m.ref.uri, 'config.json')))),
    ),
  );
  if (headTypeOf(config) !== 'lm') {
    throw new RlhfError(
      'FAILED_PRECONDITION',
      `${m.ref.uri} is a reward model (scalar head); DPO and SFT train a causal LM`,
      { field, fix: 'pass a policy (LlamaForCausalLM)' },
    );
  }
}

export async function checkInputs(store: ArtifactStore, plan: TrainingPlan): Promise<void> {
  await checkPolicyModel(store, plan.policy);
  if (plan.reference) await checkPolicyModel(store, plan.reference);
  const info = await asField(plan.dataset.field, () => store.info(plan.dataset.uri));
  if (!info)
    throw new RlhfError('NOT_FOUND', `no dataset at ${plan.dataset.uri}`, {
      field: plan.dataset.field,
      fix: 'check the URI, or upload the JSONL file first',
    });
}

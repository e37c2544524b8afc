/**
 * Checks of a training plan's inputs against the artifact store before a job is queued, so that a wrong URI
 * is the caller's immediate NOT_FOUND (or FAILED_PRECONDITION for a model of the wrong kind, INVALID_ARGUMENT
 * for an empty dataset) rather than a job failing minutes later: the models exist (and match a pinned
 * digest) and have the head the objective needs, and the datasets exist and are not empty. Only small
 * objects are read (manifest digests, config.json, and for a preference model tokenizer.json).
 */
import { answerIds, headTypeOf, parseLlamaConfig, tokenizerFromJson } from '@rlhf/ml-engine';
import { type ArtifactStore, asRlhfError, joinArtifactUri, RlhfError, sameDigest } from '@rlhf/platform';
import { modelVersion } from './model-artifacts.js';
import { overBound, type TrainLimits } from './train-options.js';
import type { PlannedArtifact, PlannedModel, TrainingPlan } from './training-plan.js';

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

async function readJson(store: ArtifactStore, uri: string, field: string): Promise<unknown> {
  return asField(field, async () => JSON.parse(new TextDecoder().decode(await store.get(uri))));
}

/**
 * The model exists and fits the objective: DPO, SFT and preference models train a causal LM (a reward
 * model is FAILED_PRECONDITION); a reward model starts from either head (an LM head is replaced by a fresh
 * scalar head); a preference model's tokenizer must encode `A` and `B` as one token each.
 */
async function checkModel(store: ArtifactStore, m: PlannedModel, plan: TrainingPlan): Promise<void> {
  await checkedModelVersion(store, m);
  const field = `${m.field}.uri`;
  const config = await asField(field, async () =>
    parseLlamaConfig(await readJson(store, joinArtifactUri(m.ref.uri, 'config.json'), field)),
  );
  if (plan.objective !== 'rm' && headTypeOf(config) !== 'lm') {
    throw new RlhfError(
      'FAILED_PRECONDITION',
      `${m.ref.uri} is a reward model (scalar head); ${plan.objective === 'pm' ? 'a preference model is' : 'DPO and SFT train'} a causal LM`,
      {
        field,
        fix:
          plan.objective === 'pm'
            ? 'start from a policy or an earlier preference model (LlamaForCausalLM)'
            : 'pass a policy (LlamaForCausalLM)',
      },
    );
  }
  if (plan.objective === 'pm') {
    const json = await readJson(store, joinArtifactUri(m.ref.uri, 'tokenizer.json'), field);
    try {
      answerIds(tokenizerFromJson(json as Parameters<typeof tokenizerFromJson>[0]));
    } catch {
      throw new RlhfError(
        'FAILED_PRECONDITION',
        `${m.ref.uri} cannot become a preference model: its tokenizer does not encode "A" and "B" as one token each`,
        { field, fix: 'start from a model whose tokenizer has the single tokens A and B' },
      );
    }
  }
}

const mib = (bytes: number): string => `${Math.ceil((bytes / (1024 * 1024)) * 10) / 10} MiB`;

async function checkDataset(
  store: ArtifactStore,
  d: PlannedArtifact,
  what: string,
  maxBytes: number,
): Promise<void> {
  const info = await asField(d.field, () => store.info(d.uri));
  if (!info)
    throw new RlhfError('NOT_FOUND', `no ${what} at ${d.uri}`, {
      field: d.field,
      fix: 'check the URI, or upload the JSONL or Parquet file first',
    });
  if (info.size > maxBytes)
    throw overBound(
      d.field,
      `the ${what} (${mib(info.size)})`,
      'maxDatasetBytes',
      mib(maxBytes),
      'train on a smaller file',
    );
  if (info.size === 0)
    throw new RlhfError('INVALID_ARGUMENT', `${d.uri} is empty`, {
      field: d.field,
      fix: 'pass a JSONL or Parquet file with at least one record',
    });
}

/**
 * Every URI of the plan resolved by the store's sandbox before anything is read: PERMISSION_DENIED naming
 * the field for a URI outside the service's artifact roots, ALREADY_EXISTS for an output where something
 * the platform did not make stands.
 */
export async function checkPlanAccess(store: ArtifactStore, plan: TrainingPlan): Promise<void> {
  for (const m of [plan.base, plan.reference])
    if (m) await store.resolve(m.ref.uri, `${m.field}.uri`, 'read');
  await store.resolve(plan.dataset.uri, plan.dataset.field, 'read');
  if (plan.eval) await store.resolve(plan.eval.uri, plan.eval.field, 'read');
  await store.resolve(plan.output.uri, plan.output.field, 'write');
}

export async function checkTrainingInputs(
  store: ArtifactStore,
  plan: TrainingPlan,
  limits: Pick<TrainLimits, 'maxDatasetBytes'>,
): Promise<void> {
  await checkPlanAccess(store, plan);
  await checkModel(store, plan.base, plan);
  if (plan.reference) await checkModel(store, plan.reference, plan);
  await checkDataset(store, plan.dataset, 'dataset', limits.maxDatasetBytes);
  if (plan.eval) await checkDataset(store, plan.eval, 'held-out dataset', limits.maxDatasetBytes);
}

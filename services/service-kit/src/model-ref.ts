/**
 * A request's ModelRef resolved to a loaded model: the URI checked, the model loaded through the cache with
 * the head the call needs, and the optional digest pin honoured (a model replaced under the same URI is
 * refused rather than silently used).
 */
import { invalidArgument, RlhfError, sameDigest } from '@rlhf/platform';
import type { ModelRef } from '@rlhf/proto';
import type { LoadedModel, ModelCache } from './model-cache.js';
import { checkModelUri } from './validate.js';

/** `field` is the ModelRef's path in the request, e.g. `model` or `judge.model`. */
export async function loadModelRef(
  cache: ModelCache,
  ref: ModelRef | undefined,
  head: 'lm' | 'scalar',
  field = 'model',
): Promise<LoadedModel> {
  const uri = checkModelUri(ref, field);
  const pin = ref?.digest ?? '';
  if (pin !== '' && !uri.startsWith('nats-obj://'))
    throw invalidArgument(
      `${field}.digest`,
      'only nats-obj:// models have a digest to pin',
      'leave it empty',
    );
  let loaded: LoadedModel;
  try {
    loaded = await cache.get(uri, head);
  } catch (err) {
    // The cache names `model.uri`; say where the ModelRef sits in this request.
    if (err instanceof RlhfError && err.field === 'model.uri' && field !== 'model') {
      throw new RlhfError(err.code, err.message, {
        field: `${field}.uri`,
        ...(err.fix === undefined ? {} : { fix: err.fix }),
        cause: err,
      });
    }
    throw err;
  }
  if (pin !== '' && !sameDigest(pin, loaded.version)) {
    throw new RlhfError(
      'FAILED_PRECONDITION',
      `the model at ${uri} has digest ${loaded.version}, not the pinned ${pin}`,
      { field: `${field}.digest`, fix: 'pin the current digest, or leave it empty to use what is stored' },
    );
  }
  return loaded;
}

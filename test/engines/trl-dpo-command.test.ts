/**
 * The `trl dpo` command line mapped from spec.dpo (services/controller/src/trainjob/trl-dpo-command.ts):
 * every flag from its field, the NLL weight as TRL's `sft` loss weight, the batch split per process, and
 * the specs TRL cannot train as the built-in trainer would refused with the field at fault.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trlDpoArgs } from '@rlhf/controller';
import type { RlhfError } from '@rlhf/platform';
import type { RlhfRunSpec } from '@rlhf/run-spec';

const dpo: RlhfRunSpec['dpo'] = {
  beta: 0.05,
  learningRate: 5e-7,
  epochs: 2,
  batchSize: 128,
  gradAccum: 4,
  warmupRatio: 0.03,
  schedule: 'cosine',
  lossType: 'sigmoid',
  labelSmoothing: 0,
  nllWeight: 0,
  maxGradNorm: 1,
};
const paths = { model: '/ckpt/policy', reference: '/ckpt/policy', pairs: '/ckpt/pairs', output: '/ckpt/out' };
const one = { processes: 1, cpu: true, seed: 7 };

/** The flags as a map (a flag with several values keeps them all). */
function flags(args: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  let key = '';
  for (const a of args) {
    if (a.startsWith('--')) {
      key = a;
      assert.ok(!m.has(key), `${key} given twice`);
      m.set(key, []);
    } else m.get(key)?.push(a);
  }
  return m;
}

test('every spec.dpo field becomes its TRL flag', () => {
  const f = flags(trlDpoArgs({ dpo }, paths, one));
  assert.deepEqual(f.get('--model_name_or_path'), ['/ckpt/policy']);
  assert.deepEqual(f.get('--dataset_name'), ['/ckpt/pairs']);
  assert.deepEqual(f.get('--dataset_train_split'), ['train']);
  assert.deepEqual(f.get('--output_dir'), ['/ckpt/out']);
  assert.deepEqual(f.get('--beta'), ['0.05']);
  assert.deepEqual(f.get('--learning_rate'), ['5e-7']);
  assert.deepEqual(f.get('--num_train_epochs'), ['2']);
  // 128 pairs a step in 4 micro-batches on one process: 32 pairs a micro-batch.
  assert.deepEqual(f.get('--per_device_train_batch_size'), ['32']);
  assert.deepEqual(f.get('--gradient_accumulation_steps'), ['4']);
  assert.deepEqual(f.get('--lr_scheduler_type'), ['cosine']);
  assert.deepEqual(f.get('--warmup_steps'), ['0.03']);
  assert.deepEqual(f.get('--max_grad_norm'), ['1']);
  assert.deepEqual(f.get('--seed'), ['7']);
  assert.deepEqual(f.get('--loss_type'), ['sigmoid']);
  assert.equal(f.has('--loss_weights'), false);
  assert.deepEqual(f.get('--use_cpu'), ['true']);
  assert.deepEqual(f.get('--push_to_hub'), ['false']);
  assert.deepEqual(f.get('--report_to'), ['none']);
  assert.equal(f.has('--max_length'), false);
});

test('the NLL weight is the weight of TRL sft loss next to the pairwise loss', () => {
  const f = flags(trlDpoArgs({ dpo: { ...dpo, nllWeight: 0.2, lossType: 'hinge' } }, paths, one));
  assert.deepEqual(f.get('--loss_type'), ['hinge', 'sft']);
  assert.deepEqual(f.get('--loss_weights'), ['1', '0.2']);
});

test('schedules: constant keeps the warmup; linear is linear', () => {
  assert.deepEqual(
    flags(trlDpoArgs({ dpo: { ...dpo, schedule: 'constant' } }, paths, one)).get('--lr_scheduler_type'),
    ['constant_with_warmup'],
  );
  assert.deepEqual(
    flags(trlDpoArgs({ dpo: { ...dpo, schedule: 'linear' } }, paths, one)).get('--lr_scheduler_type'),
    ['linear'],
  );
});

test('the global batch splits over processes; GPU runs drop --use_cpu; --max_length when given', () => {
  const f = flags(trlDpoArgs({ dpo }, paths, { processes: 8, cpu: false, seed: 1, maxLength: 2048 }));
  assert.deepEqual(f.get('--per_device_train_batch_size'), ['4']);
  assert.equal(f.has('--use_cpu'), false);
  assert.deepEqual(f.get('--max_length'), ['2048']);
});

function refused(fn: () => unknown, field: string, fix: RegExp): void {
  assert.throws(fn, (e: RlhfError) => {
    assert.equal(e.field, field);
    assert.match(e.fix ?? '', fix);
    return true;
  });
}

test('what TRL cannot train the same way is refused with the field and the fix', () => {
  refused(
    () => trlDpoArgs({ dpo: { ...dpo, batchSize: 100 } }, paths, { ...one, processes: 8 }),
    'spec.dpo.batchSize',
    /multiple of 32/,
  );
  refused(
    () => trlDpoArgs({ dpo: { ...dpo, labelSmoothing: 0.1 } }, paths, one),
    'spec.dpo.labelSmoothing',
    /0/,
  );
  refused(
    () => trlDpoArgs({ dpo: { ...dpo, warmupRatio: 1 } }, paths, one),
    'spec.dpo.warmupRatio',
    /below 1/,
  );
  refused(
    () => trlDpoArgs({ dpo }, { ...paths, reference: '/ckpt/pi0' }, one),
    'spec.reference',
    /reference: previous/,
  );
  refused(
    () => trlDpoArgs({ dpo }, paths, { ...one, processes: 0 }),
    'spec.engines.train.trainJob.numNodes',
    /./,
  );
});

/**
 * `rlhf model push` and `rlhf model pull`: model directories into and out of the places runs read them
 * (nats-obj://, s3://, file://), and Hugging Face models (hf://) into either.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelDirContents } from '@rlhf/ml-engine';
import { invalidArgument, RlhfError } from '@rlhf/platform/core';
import type { Command } from 'commander';
import {
  byteProgress,
  copyModelFiles,
  mustBeModelDir,
  refuseExisting,
  withStoreFor,
} from '../artifact-transfer.js';
import { addNatsOptions } from '../nats-flags.js';
import { ProgressBar } from '../progress.js';

/** Runs a write to `flag`, turning "refusing to overwrite" into advice about the flag. */
async function writingTo<T>(flag: string, write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'ALREADY_EXISTS') throw e;
    throw new RlhfError('ALREADY_EXISTS', (e as Error).message, {
      field: flag,
      fix: `choose a new ${flag}, or pass --overwrite to replace it`,
    });
  }
}

/**
 * The local checkpoint directory of an hf:// model (from the Hugging Face cache, downloaded when online),
 * with a progress line for the download.
 */
export async function hfSnapshot(uri: string, flag: string): Promise<string> {
  const { resolveHfModel } = await import('@rlhf/platform');
  let bar: ProgressBar | undefined;
  const dir = await resolveHfModel(uri, flag, {
    onFile: (done, total, file) => {
      bar ??= new ProgressBar({ label: `download ${uri}`, total, unit: 'file', plainEveryMs: 0 });
      bar.update(done, file);
    },
  });
  bar?.done('downloaded');
  return dir;
}

/** Imports the hf:// model `uri` as the model directory `out` (the engine's Hugging Face import). */
export async function importHfModel(
  uri: string,
  flag: string,
  out: string,
  overwrite: boolean,
): Promise<ModelDirContents> {
  const snapshot = await hfSnapshot(uri, flag);
  return (await import('@rlhf/ml-engine')).importHfCheckpoint(snapshot, out, { overwrite });
}

interface PushFlags {
  model: string;
  to: string;
  overwrite?: boolean;
}

async function push(f: PushFlags): Promise<void> {
  const { isHfUri, parseWritableUri } = await import('@rlhf/platform');
  const { MODEL_MANIFEST, publishModelDir } = await import('@rlhf/service-kit');
  const target = parseWritableUri(f.to, '--to');
  let scratch: string | null = null;
  let dir = f.model;
  try {
    if (isHfUri(f.model)) {
      scratch = await mkdtemp(join(tmpdir(), 'rlhf-push-'));
      dir = join(scratch, 'model');
      await importHfModel(f.model, '--model', dir, false);
    } else if (/^(nats-obj|s3):\/\//.test(f.model)) {
      // From one store to another (e.g. s3:// to the cluster's nats-obj://), through a local copy.
      const { saveModelFromArtifact } = await import('@rlhf/service-kit');
      scratch = await mkdtemp(join(tmpdir(), 'rlhf-push-'));
      dir = join(scratch, 'model');
      const from = f.model.replace(/\/+$/, '');
      await withStoreFor(from, '--model', f, 'rlhf-model-push', (store) =>
        saveModelFromArtifact(store, from, dir, { onFile: byteProgress(`pull ${from}`) }),
      );
    } else {
      await mustBeModelDir(f.model, '--model');
    }
    if (target.scheme === 'file') {
      const { writeDirectoryAtomically } = await import('@rlhf/ml-engine');
      await writingTo(
        '--to',
        writeDirectoryAtomically(target.path, (tmp) => copyModelFiles(dir, tmp), {
          overwrite: f.overwrite === true,
        }),
      );
      process.stdout.write(`pushed ${f.model} to ${f.to}\n`);
      return;
    }
    const digest = await withStoreFor(f.to, '--to', f, 'rlhf-model-push', async (store) => {
      await refuseExisting(store, `${f.to.replace(/\/+$/, '')}/${MODEL_MANIFEST}`, '--to', f.overwrite);
      return publishModelDir(store, dir, f.to.replace(/\/+$/, ''), byteProgress(`push ${f.to}`));
    });
    process.stdout.write(`pushed ${f.model} to ${f.to} (manifest ${digest})\n`);
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

interface PullFlags {
  from: string;
  out: string;
  overwrite?: boolean;
}

async function pull(f: PullFlags): Promise<void> {
  const { isHfUri, parseArtifactUri } = await import('@rlhf/platform');
  const { saveModelFromArtifact } = await import('@rlhf/service-kit');
  if (isHfUri(f.from)) {
    await writingTo('--out', importHfModel(f.from, '--from', f.out, f.overwrite === true));
    process.stdout.write(`pulled ${f.from} to ${f.out}\n`);
    return;
  }
  if (parseArtifactUri(f.from, '--from').scheme === 'file')
    throw invalidArgument(
      '--from',
      `${f.from} is a local directory already`,
      'pass a nats-obj://, s3:// or hf:// URI',
    );
  await withStoreFor(f.from, '--from', f, 'rlhf-model-pull', (store) =>
    writingTo(
      '--out',
      saveModelFromArtifact(store, f.from.replace(/\/+$/, ''), f.out, {
        overwrite: f.overwrite === true,
        onFile: byteProgress(`pull ${f.from}`),
      }),
    ),
  );
  process.stdout.write(`pulled ${f.from} to ${f.out}\n`);
}

const uriForms = [
  '  nats-obj://<bucket>/<key>  the Object Store (NATS flags below; on a cluster',
  '    first `kubectl -n rlhf-system port-forward svc/<release>-nats 4222`)',
  '  s3://<bucket>/<key>  S3 or an S3-protocol store (AWS_ENDPOINT_URL_S3,',
  '    AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, RLHF_S3_PATH_STYLE)',
  '  file:///abs/path  a directory, e.g. on a volume the run mounts',
];

export function registerModelTransfer(model: Command): void {
  const pushCmd = model
    .command('push')
    .summary('put a model where runs read it: nats-obj://, s3:// or file://')
    .description(
      [
        'Copy a model directory (or an hf:// model, imported first, or a model in another store) to --to, where an RLHFRun names it',
        '(spec.policy.model, spec.judge.model). Object stores get one object per file and manifest.json last,',
        'so a run never sees half a model; a file:// directory appears whole. --to is one of:',
        ...uriForms,
        'hf://<org>/<name>[@<revision>] is read from the Hugging Face cache (HF_HOME, HF_HUB_CACHE) and',
        'downloaded when online (HF_ENDPOINT, HF_TOKEN; HF_HUB_OFFLINE=1 reads the cache only).',
      ].join('\n'),
    )
    .requiredOption(
      '--model <DIR|URI>',
      'model directory, hf://<org>/<name>[@rev], or a nats-obj:// or s3:// model',
    )
    .requiredOption('--to <URI>', 'where to put it')
    .option('--overwrite', 'replace a model already at --to')
    .addHelpText(
      'after',
      '\nExample:\n  rlhf model push --model demo/sft --to nats-obj://rlhf-models/sft\n  rlhf model push --model hf://HuggingFaceTB/SmolLM2-135M-Instruct --to s3://my-models/smollm2-135m\n',
    );
  addNatsOptions(
    pushCmd,
    'NATS with JetStream, for nats-obj:// (default nats://127.0.0.1:4222)',
    '0s: fail at once',
  );
  pushCmd.action(push);

  const pullCmd = model
    .command('pull')
    .summary('copy a model from nats-obj://, s3:// or hf:// into a local model directory')
    .description(
      [
        'Copy the model at --from (as summary.json, an RLHFRun status or `kubectl get rlhfiterations` name it,',
        'or a Hugging Face model) into --out, a model directory that `rlhf generate --model` and `rlhf model',
        "export` read. Every file is checked against the model manifest's digest; --out appears only when the",
        'copy is complete. --from is one of:',
        ...uriForms.slice(0, 4),
        '  hf://<org>/<name>[@rev]  a Hugging Face model, imported (cache HF_HOME;',
        '    HF_ENDPOINT, HF_TOKEN; HF_HUB_OFFLINE=1 reads the cache only)',
        'A finished `rlhf run` already leaves its models in <out>/models.',
      ].join('\n'),
    )
    .requiredOption('--from <URI>', 'model URI: nats-obj://, s3:// or hf://')
    .requiredOption('--out <DIR>', 'output directory')
    .option('--overwrite', 'replace an existing output directory');
  addNatsOptions(
    pullCmd,
    'NATS with JetStream, for nats-obj:// (default nats://127.0.0.1:4222)',
    '0s: fail at once',
  );
  pullCmd.action(pull);
}

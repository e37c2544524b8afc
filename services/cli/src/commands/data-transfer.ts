/**
 * `rlhf data push` and `rlhf data pull`: dataset files (JSONL, Parquet, any bytes) into and out of the
 * places runs read them (spec.prompts.dataset, spec.prompts.eval): nats-obj://, s3:// and file://.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { RlhfError } from '@rlhf/platform/core';
import type { Command } from 'commander';
import { formatMegabytes, localFileSize, refuseExisting, withStoreFor } from '../artifact-transfer.js';
import { addNatsOptions } from '../nats-flags.js';

interface PushFlags {
  file: string;
  to: string;
  overwrite?: boolean;
}

interface PullFlags {
  from: string;
  out: string;
  overwrite?: boolean;
}

const uriHelp = [
  "URIs: nats-obj://<bucket>/<key> (the platform's Object Store over NATS; on a cluster, first",
  '`kubectl -n rlhf-system port-forward svc/<release>-nats 4222`), s3://<bucket>/<key> (AWS_ENDPOINT_URL_S3,',
  'AWS_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, RLHF_S3_PATH_STYLE) or file:///abs/path.',
];

export function registerDataTransfer(data: Command): void {
  const pushCmd = data
    .command('push')
    .summary('put a dataset file where runs read it: nats-obj://, s3:// or file://')
    .description(
      [
        'Copy a local file to --to as one object (or an atomically written file), which a reader sees whole or',
        'not at all. An existing object is replaced only with --overwrite.',
        ...uriHelp,
      ].join('\n'),
    )
    .requiredOption('--file <FILE>', 'the local dataset file')
    .requiredOption('--to <URI>', 'where to put it')
    .option('--overwrite', 'replace an object already at --to')
    .addHelpText(
      'after',
      '\nExample:\n  rlhf data push --file demo/data/prompts.jsonl --to nats-obj://rlhf-data/prompts.jsonl\n',
    );
  addNatsOptions(
    pushCmd,
    'NATS with JetStream, for nats-obj:// (default nats://127.0.0.1:4222)',
    '0s: fail at once',
  );
  pushCmd.action(async (f: PushFlags) => {
    const { parseWritableUri } = await import('@rlhf/platform');
    parseWritableUri(f.to, '--to');
    const size = await localFileSize(f.file, '--file');
    const target = f.to;
    const info = await withStoreFor(target, '--to', f, 'rlhf-data-push', async (store) => {
      await refuseExisting(store, target, '--to', f.overwrite);
      if (size >= 8e6) process.stderr.write(`uploading ${formatMegabytes(size)} to ${f.to}\n`);
      return store.putFile(target, resolve(f.file));
    });
    process.stdout.write(`pushed ${f.file} to ${f.to} (${formatMegabytes(info.size)}, ${info.digest})\n`);
  });

  const pullCmd = data
    .command('pull')
    .summary('copy a dataset file from nats-obj://, s3:// or file:// to a local file')
    .description(
      [
        'Copy the object at --from into the local file --out (written atomically); --out is replaced only',
        'with --overwrite. Objects the platform wrote are checked against their digest.',
        ...uriHelp,
      ].join('\n'),
    )
    .requiredOption('--from <URI>', 'the dataset URI')
    .requiredOption('--out <FILE>', 'the local file to write')
    .option('--overwrite', 'replace an existing --out');
  addNatsOptions(
    pullCmd,
    'NATS with JetStream, for nats-obj:// (default nats://127.0.0.1:4222)',
    '0s: fail at once',
  );
  pullCmd.action(async (f: PullFlags) => {
    const out = resolve(f.out);
    if (f.overwrite !== true && (await stat(out).catch(() => null)))
      throw new RlhfError('ALREADY_EXISTS', `${f.out} exists`, {
        field: '--out',
        fix: 'choose a new --out, or pass --overwrite to replace it',
      });
    // Written by stream to a temporary sibling of --out, renamed into place once whole and checked.
    const info = await withStoreFor(f.from, '--from', f, 'rlhf-data-pull', (store) =>
      store.getFile(f.from, out),
    );
    process.stdout.write(`pulled ${f.from} to ${f.out} (${formatMegabytes(info.size)})\n`);
  });
}

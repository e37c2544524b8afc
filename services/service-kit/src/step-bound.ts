/**
 * The bound on a job's optimizer steps when it asks for epochs rather than max_steps: the step count then
 * depends on the dataset's record count, known only once the job holds the data. Checked after the data is
 * fetched and before the first step, so an over-long job fails at once (RESOURCE_EXHAUSTED naming the
 * limit and its flag) instead of occupying the trainer.
 */
import { createReadStream } from 'node:fs';
import type { TrainOptions } from '@rlhf/ml-engine';
import { overBound } from './train-options.js';

/** The records of a JSONL file as the engine reads them: its lines with anything but white space. */
export async function countJsonlRecords(path: string): Promise<number> {
  let records = 0;
  let content = false;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (const byte of chunk) {
      if (byte === 0x0a) {
        if (content) records++;
        content = false;
      } else if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) content = true;
    }
  }
  return content ? records + 1 : records;
}

/** The optimizer steps of `options` over `records` examples, as the engine's trainer counts them. */
export function plannedSteps(
  options: Pick<TrainOptions, 'epochs' | 'maxSteps' | 'batchSize'>,
  records: number,
) {
  return options.maxSteps ?? Math.ceil(options.epochs * Math.ceil(records / options.batchSize));
}

/** RESOURCE_EXHAUSTED naming `<hyperparameters>.epochs` when the job would take more than `maxSteps`. */
export function checkPlannedSteps(
  options: Pick<TrainOptions, 'epochs' | 'maxSteps' | 'batchSize'>,
  records: number,
  maxSteps: number,
  hyperparametersField: string,
): void {
  const steps = plannedSteps(options, records);
  if (steps > maxSteps)
    throw overBound(
      `${hyperparametersField}.epochs`,
      `${options.epochs} epochs over ${records} records at batch size ${options.batchSize} (${steps} steps)`,
      'maxSteps',
      `${maxSteps} steps`,
      'ask for fewer epochs or set max_steps',
    );
}

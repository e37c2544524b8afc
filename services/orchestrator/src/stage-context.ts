/**
 * What a stage function gets from the table driver: the run's context, which iteration it runs in, its
 * label for the terminal, and the run's input datasets, read and checked once per process however many
 * stages read them (every iteration's generate reads the same prompt file).
 */
import { parsePromptRecord } from '@rlhf/ml-engine';
import { invalidArgument, RlhfError } from '@rlhf/platform';
import type { PromptSource } from '@rlhf/workflow';
import { type LabelledPair, readLabelledPairs } from './data-stages.js';
import { readJsonl } from './jsonl-artifacts.js';
import type { PromptRow } from './model-stages.js';
import type { RunContext } from './run-context.js';

export interface StageContext extends RunContext {
  /** 0 for setup. */
  iteration: number;
  /** `sft`, `iteration 2 generate`: how the terminal names the stage. */
  label: string;
  datasets: RunDatasets;
}

export class RunDatasets {
  private readonly prompts = new Map<string, Promise<PromptRow[]>>();
  private readonly pairs = new Map<string, Promise<LabelledPair[]>>();

  constructor(private readonly ctx: RunContext) {}

  /** Fails naming `field` when `uri` is outside the run's sandbox or does not exist. */
  async mustExist(uri: string, field: string, what: string): Promise<void> {
    // The spec's URI through the run's sandbox first: PERMISSION_DENIED naming the field, nothing read.
    await this.ctx.deps.store.resolve(uri, field, 'read');
    if (!(await this.ctx.deps.store.info(uri)))
      throw new RlhfError('NOT_FOUND', `${what} ${uri} does not exist`, {
        field,
        fix: 'point the field at an existing artifact (or upload it first)',
      });
  }

  /** A model directory is there when its manifest (nats-obj://) or its config.json (file://) is. */
  async modelMustExist(uri: string, field: string): Promise<void> {
    await this.mustExist(
      `${uri}/${uri.startsWith('file://') ? 'config.json' : 'manifest.json'}`,
      field,
      'model',
    );
  }

  /** The prompts of a dataset: `{"prompt"}`, `{"prompt_ids"}` or chat `{"messages"}` rows, each checked. */
  async promptRows(source: PromptSource): Promise<PromptRow[]> {
    const key = `${source.field}\n${source.uri}`;
    let rows = this.prompts.get(key);
    if (!rows) {
      rows = this.readPrompts(source.uri, source.field);
      this.prompts.set(key, rows);
    }
    const all = await rows;
    return source.first === undefined ? all : all.slice(0, source.first);
  }

  /** The rows of an offline pair dataset, each checked. */
  labelledPairs(uri: string, field: string): Promise<LabelledPair[]> {
    let rows = this.pairs.get(uri);
    if (!rows) {
      rows = this.mustExist(uri, field, 'dataset').then(() =>
        readLabelledPairs(this.ctx.deps.store, uri, field),
      );
      this.pairs.set(uri, rows);
    }
    return rows;
  }

  private async readPrompts(uri: string, field: string): Promise<PromptRow[]> {
    await this.mustExist(uri, field, 'dataset');
    const rows = await readJsonl(this.ctx.deps.store, uri, (value, where): PromptRow => {
      let r: ReturnType<typeof parsePromptRecord>;
      try {
        r = parsePromptRecord(value, where);
      } catch (err) {
        throw invalidArgument(
          `${field} (${where})`,
          (err as Error).message,
          (err as Error & { fix?: string }).fix ??
            'write one {"prompt": "..."} or {"messages": [...]} object per line (docs/DATA.md)',
        );
      }
      if (r.kind === 'messages') return { messages: r.messages };
      return 'ids' in r.prompt ? { prompt_ids: r.prompt.ids } : { prompt: r.prompt.text };
    });
    if (rows.length === 0) throw invalidArgument(field, `${uri} holds no prompts`);
    return rows;
  }
}

/**
 * The generic driver of a stage table: setup's stages once (iteration 0), then every iteration's stages,
 * in table order. A stage the spec does not enable is passed over (saying why when the table says); a
 * stage with a KV record is skipped and its recorded result loaded; any other stage gets its inputs from
 * the table (`resolve`: the spec and the results before it), runs its function, and has its record
 * written. With a stop point (a cluster unit's last record) the loop returns at the first stage past it,
 * `done: false`. Nothing here knows a stage by name.
 */
import type { InputsOf, ResultsOf, StageTable, StopPoint } from '@rlhf/workflow';
import type { RunContext } from './run-context.js';
import { RunDatasets, type StageContext } from './stage-context.js';

export type StageFn<I, R> = (ctx: StageContext, inputs: I) => Promise<R>;

/** One function per stage of the table, typed by the stage's inputs and result. */
export type StageFns<IO> = { [N in keyof IO]: StageFn<InputsOf<IO>[N], ResultsOf<IO>[N]> };

export interface TableRun<IO> {
  /** False when the run stopped at its stop point before the end. */
  done: boolean;
  /** Each iteration's results (0 = setup), by stage name; a stage that did not run has none. */
  results: ReadonlyMap<number, Partial<ResultsOf<IO>>>;
  /** Wall-clock seconds of each stage record, by iteration then record name. */
  seconds: ReadonlyMap<number, ReadonlyMap<string, number>>;
}

export async function driveTable<IO>(
  ctx: RunContext,
  table: StageTable<IO>,
  fns: StageFns<IO>,
  until?: StopPoint,
): Promise<TableRun<IO>> {
  const results = new Map<number, Partial<ResultsOf<IO>>>();
  const seconds = new Map<number, Map<string, number>>();
  const at = (t: number): Partial<ResultsOf<IO>> => {
    const r = results.get(t) ?? {};
    results.set(t, r);
    return r;
  };
  const keep = (t: number, name: string, record: string, result: unknown, took: number) => {
    // A result is stored under its own stage's name; the table's types tie the two.
    (at(t) as Record<string, unknown>)[name] = result;
    const s = seconds.get(t) ?? new Map<string, number>();
    seconds.set(t, s);
    s.set(record, took);
  };
  const datasets = new RunDatasets(ctx);
  const steps = [...table.map((def, index) => ({ def, index, t: 0 })).filter((s) => s.def.phase === 'setup')];
  const perIteration = table.map((def, index) => ({ def, index })).filter((s) => s.def.phase === 'iteration');
  for (let t = 1; t <= ctx.spec.iterations; t++) for (const s of perIteration) steps.push({ ...s, t });
  const stop = until ? stopIndex(table, until) : null;

  for (const { def, index, t } of steps) {
    if (stop && (t > stop.t || (t === stop.t && index > stop.index)))
      return { done: false, results, seconds };
    const label = t === 0 ? def.name : `iteration ${t} ${def.name}`;
    if (!def.enabled(ctx.spec)) {
      const why = def.notNeeded?.(ctx.spec);
      if (why) ctx.ui.finish(label, `not needed: ${why}`);
      continue;
    }
    const known = await ctx.state.stage(t, def.record);
    if (known) {
      ctx.ui.skip(label);
      keep(t, def.name, def.record, known.result, known.seconds);
      continue;
    }
    const inputs = def.resolve({ spec: ctx.spec, run: ctx.run, iteration: t, at });
    const run = fns[def.name] as StageFn<unknown, object>;
    const started = new Date();
    const result = await run({ ...ctx, iteration: t, label, datasets }, inputs);
    const finished = new Date();
    const took = (finished.getTime() - started.getTime()) / 1000;
    await ctx.state.finish({
      stage: def.record,
      iteration: t,
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      seconds: took,
      result: { ...result, seconds: took },
    });
    keep(t, def.name, def.record, result, took);
  }
  return { done: true, results, seconds };
}

/** Where in the table a stop point is: its iteration and the index of the entry writing its record. */
function stopIndex<IO>(table: StageTable<IO>, until: StopPoint): { t: number; index: number } {
  const phase = until.iteration === 0 ? 'setup' : 'iteration';
  const index = table.findIndex((d) => d.phase === phase && d.record === until.stage);
  if (index < 0) throw new Error(`no ${phase} stage records "${until.stage}"`);
  return { t: until.iteration, index };
}

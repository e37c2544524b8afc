/**
 * The run cut into cluster-sized units, derived from the stage table: the controller creates one Job per
 * unit and `rlhf stage <unit>` is what those Jobs run. A unit is the table's stages that name it (`setup`:
 * everything of iteration 0; then one unit per iteration stage); it is done exactly when the record of its
 * last stage that runs for the spec exists. A unit with no stage enabled for the spec (generate and judge
 * with offline pairs) is not part of the run.
 */
import type { PlacementGroup, RlhfRunSpec } from '@rlhf/run-spec';
import { type ServiceName, type StageDef, serviceNames } from './stage-def.js';
import { stageTable } from './stage-table.js';

/** Where a partial run stops: once this stage record exists, before anything after it runs. */
export interface StopPoint {
  iteration: number;
  /** A record name of the table. */
  stage: string;
}

export interface StageUnit {
  iteration: number;
  /** The unit's name: `setup` or an iteration stage's unit. */
  stage: string;
  /** The stage record that marks the unit done. */
  until: StopPoint;
}

/** What the unit plan reads of a table entry (any table: these fields do not depend on its result types). */
export type UnitDef = Pick<
  StageDef<Record<string, unknown>, string>,
  'name' | 'phase' | 'unit' | 'record' | 'enabled' | 'services' | 'placement'
>;
type Table = readonly UnitDef[];

/** Unit names of one phase, in table order. */
export function unitNames(table: Table, phase: 'setup' | 'iteration'): string[] {
  return [...new Set(table.filter((d) => d.phase === phase).map((d) => d.unit))];
}

/** The names of the iteration units, in order (one Job each per iteration). */
export const iterationStages: readonly string[] = unitNames(stageTable, 'iteration');

function unitOf(table: Table, name: string, iteration: number, spec?: RlhfRunSpec): StageUnit | null {
  const phase = iteration === 0 ? 'setup' : 'iteration';
  const defs = table.filter((d) => d.unit === name && d.phase === phase && (!spec || d.enabled(spec)));
  const last = defs[defs.length - 1];
  return last ? { iteration, stage: name, until: { iteration, stage: last.record } } : null;
}

export function setupUnit(table: Table = stageTable): StageUnit {
  return unitOf(table, 'setup', 0) as StageUnit;
}

export function iterationUnit(iteration: number, stage: string, table: Table = stageTable): StageUnit {
  const unit = unitOf(table, stage, iteration);
  if (!unit) throw new Error(`unknown stage "${stage}": one of ${unitNames(table, 'iteration').join(', ')}`);
  return unit;
}

/** Every unit of the run for this spec, in order. */
export function stageUnits(spec: RlhfRunSpec, table: Table = stageTable): StageUnit[] {
  const units: StageUnit[] = [];
  for (const name of unitNames(table, 'setup')) {
    const u = unitOf(table, name, 0, spec);
    if (u) units.push(u);
  }
  for (let t = 1; t <= spec.iterations; t++)
    for (const name of unitNames(table, 'iteration')) {
      const u = unitOf(table, name, t, spec);
      if (u) units.push(u);
    }
  return units;
}

/** A unit named on the command line (`rlhf stage <unit> --iteration <t>`). */
export function parseUnit(stage: string, iteration: number, table: Table = stageTable): StageUnit {
  const setup = unitNames(table, 'setup');
  if (setup.includes(stage)) {
    if (iteration !== 0) throw new Error(`the ${stage} unit is iteration 0`);
    return unitOf(table, stage, 0) as StageUnit;
  }
  const names = unitNames(table, 'iteration');
  if (!names.includes(stage))
    throw new Error(`unknown stage "${stage}": one of ${[...setup, ...names].join(', ')}`);
  if (!Number.isInteger(iteration) || iteration < 1) throw new Error('iteration stages start at iteration 1');
  return iterationUnit(iteration, stage, table);
}

/** The services whose workers a unit needs for this spec (each started once per pod). */
export function unitServices(spec: RlhfRunSpec, unit: string, table: Table = stageTable): ServiceName[] {
  const needed = new Set<ServiceName>();
  for (const d of table)
    if (d.unit === unit && d.enabled(spec)) for (const s of d.services(spec)) needed.add(s);
  return serviceNames.filter((s) => needed.has(s));
}

/** The placement group of a unit's pods: its first stage's. */
export function unitPlacement(spec: RlhfRunSpec, unit: string, table: Table = stageTable): PlacementGroup {
  const first = table.find((d) => d.unit === unit);
  if (!first) throw new Error(`unknown unit "${unit}"`);
  return { ...first.placement(spec) };
}

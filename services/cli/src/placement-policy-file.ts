/**
 * Reading the operator's placement policy file (`--placement-policy`, the chart's controller.placementPolicy
 * as mounted from its ConfigMap) for `rlhf controller` and `rlhf validate`: an unreadable file is NOT_FOUND,
 * a bad one INVALID_ARGUMENT listing every bad field of the policy.
 */
import { readFile } from 'node:fs/promises';
import { RlhfError } from '@rlhf/platform/core';
import type { PlacementPolicy } from '@rlhf/run-spec';

export async function readPlacementPolicy(
  file: string,
  flag = '--placement-policy',
): Promise<PlacementPolicy> {
  const { InvalidPlacementPolicyError, parsePlacementPolicyYaml } = await import('@rlhf/run-spec');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new RlhfError('NOT_FOUND', `cannot read the placement policy ${file}`, {
      field: flag,
      fix: 'pass the path of a placement policy YAML file',
      cause,
    });
  }
  try {
    return parsePlacementPolicyYaml(text, file);
  } catch (err) {
    if (!(err instanceof InvalidPlacementPolicyError)) throw err;
    throw new RlhfError('INVALID_ARGUMENT', err.message, { field: flag, fix: err.fix, cause: err });
  }
}

/** One line for a log: how much the policy allows. */
export function describePlacementPolicy(p: PlacementPolicy): Record<string, unknown> {
  return {
    tolerations: p.allowedTolerations.length,
    priorityClasses: p.allowedPriorityClasses,
    nodeLabels: Object.keys(p.allowedNodeSelectors),
    schedulers: p.allowedSchedulerNames,
    affinity: p.allowAffinity,
  };
}

/**
 * The CustomResourceDefinitions of rlhf.dev/v1alpha1, generated from the run-spec schema and the status
 * schemas: `npm run crds:gen` writes them to deploy/crds and charts/rlhf/crds, and a test checks that the
 * committed files are what this module produces. Nothing here restates a field of the spec.
 *
 * `x-rlhf-or-words` (a number or a word, e.g. `lengthPenalty: 0.001 | auto`) has no structural type:
 * `x-kubernetes-int-or-string` means integer-or-string (the API server validates it as
 * `type: [integer, string]`, so 0.001 would be rejected), a `type: string` field would make users quote
 * every number, and CEL cannot see a field without a type. Such a field is therefore emitted untyped with
 * `x-kubernetes-preserve-unknown-fields: true` (structural schemas allow that) and its values are checked
 * by an `anyOf` of value validations only (no `type`, `description` or `default` inside it, as structural
 * schemas require): either one of the words, or a number within the node's bounds. The second branch
 * rejects non-numbers with bounds that no string, list, object or boolean can satisfy.
 */
import { stringify } from 'yaml';
import type { CelRule, OpenApiSchema } from './openapi-types.js';
import { rlhfRunSpecSchema } from './rlhf-run-schema.js';
import type { SchemaNode } from './schema-types.js';
import {
  type CrdNode,
  rlhfIterationSpecSchema,
  rlhfIterationStatusSchema,
  rlhfRunStatusSchema,
} from './status-schema.js';
import { applyDefaults } from './validate.js';

export { applyCrdDefaults, type CrdProblem, validateCustomResource } from './crd-validate.js';
export type { CelRule, OpenApiSchema } from './openapi-types.js';
export * from './status-schema.js';

export const crdGroup = 'rlhf.dev';
export const crdVersion = 'v1alpha1';

/**
 * Rules that only make sense on a cluster (`oldSelf` compares an update with the stored object), keyed by
 * the path of the spec node they sit on. A run's inputs cannot change under finished iterations; its
 * length can only grow.
 */
const transitionRules: Record<string, CelRule[]> = {
  policy: [
    { rule: 'self.model == oldSelf.model', message: 'policy.model cannot change after the run is created' },
  ],
  reference: [{ rule: 'self == oldSelf', message: 'reference cannot change after the run is created' }],
  judge: [
    // judge has `default: {}`, and the API server checks a default against the rules before its fields'
    // own defaults fill it in, so the rule must hold on an object without type.
    {
      rule: '!has(self.type) || !has(oldSelf.type) || self.type == oldSelf.type',
      message: 'judge.type cannot change after the run is created',
    },
  ],
  prompts: [
    {
      rule: '!has(oldSelf.dataset) || (has(self.dataset) && self.dataset == oldSelf.dataset)',
      message: 'prompts.dataset cannot change after the run is created',
    },
  ],
  iterations: [
    { rule: 'self >= oldSelf', message: 'iterations may only grow (finished iterations are kept)' },
  ],
  'generation.seed': [
    { rule: 'self == oldSelf', message: 'generation.seed cannot change after the run is created' },
  ],
};

/**
 * Cross-field rules that parse-run.ts checks in code but the schema does not carry yet, so that the API
 * server rejects the same runs `rlhf validate` does (a test feeds both the same invalid manifests).
 */
const crossFieldRules = (spec: SchemaNode): Record<string, CelRule[]> => ({
  '': [
    {
      // With spec.setup (where the schema has it) the gold task is the setup's task.
      rule: `self.judge.type != 'gold' || has(self.judge.task)${spec.properties?.setup ? ' || has(self.setup)' : ''}`,
      message: 'judge.task is required for judge type gold (which gold reward?)',
      fieldPath: '.judge.task',
    },
  ],
  dpo: [
    {
      // dpo has `default: {}`: the rule must hold on it before the fields' defaults (see judge above).
      rule: '!has(self.gradAccum) || !has(self.batchSize) || self.gradAccum <= self.batchSize',
      message: 'dpo.gradAccum must not exceed dpo.batchSize',
      fieldPath: '.gradAccum',
    },
  ],
});

/** Rules on the resource root: the name becomes a NATS subject token and a label value. */
const rootRules: CelRule[] = [
  {
    rule: "self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
    message: 'metadata.name must be a lowercase DNS label (a-z, 0-9, -; at most 63 characters)',
    fieldPath: '.metadata.name',
  },
];

function mergeRules(node: CrdNode, extra: CelRule[] | undefined): CelRule[] {
  const rules: CelRule[] = [...(node['x-kubernetes-validations'] ?? [])];
  for (const r of extra ?? []) if (!rules.some((have) => have.rule === r.rule)) rules.push(r);
  return rules;
}

/** Bounds that every non-number fails; numbers ignore them (JSON-schema keywords apply per type). */
const numbersOnly: OpenApiSchema = {
  minLength: 1,
  maxLength: 0,
  minItems: 1,
  maxItems: 0,
  minProperties: 1,
  maxProperties: 0,
  not: { enum: [true, false] },
};

function orWordsNode(node: CrdNode, words: string[], rules: CelRule[]): OpenApiSchema {
  const bounds: OpenApiSchema = {};
  if (node.type === 'integer') bounds.multipleOf = 1;
  if (node.minimum !== undefined) bounds.minimum = node.minimum;
  if (node.exclusiveMinimum) bounds.exclusiveMinimum = true;
  if (node.maximum !== undefined) bounds.maximum = node.maximum;
  if (node.exclusiveMaximum) bounds.exclusiveMaximum = true;
  if (rules.length) throw new Error('CEL rules cannot apply to an untyped x-rlhf-or-words field');
  const range = [
    node.minimum !== undefined ? `${node.exclusiveMinimum ? '>' : '>='} ${node.minimum}` : '',
    node.maximum !== undefined ? `${node.exclusiveMaximum ? '<' : '<='} ${node.maximum}` : '',
  ]
    .filter(Boolean)
    .join(' and ');
  const what = `${node.type === 'integer' ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}`;
  return {
    description: `${node.description} Either ${what} or ${words.map((w) => `"${w}"`).join(', ')}.`,
    ...(node.default !== undefined ? { default: node.default } : {}),
    'x-kubernetes-preserve-unknown-fields': true,
    anyOf: [{ enum: [...words] }, { ...bounds, ...numbersOnly }],
  };
}

/**
 * One schema node in CRD form. `path` is the dotted path below spec (for the rule tables); `materialize`
 * says that run-spec defaulting creates this object when it is absent, which the API server does only
 * with `default: {}`.
 */
function toOpenApi(
  node: CrdNode,
  path: string,
  rulesAt: (path: string) => CelRule[] | undefined,
  materialize = false,
): OpenApiSchema {
  const rules = mergeRules(node, rulesAt(path));
  const words = node['x-rlhf-or-words'];
  // The API server compares a whole-number value (0 in JSON) with a fractional bound truncated to an
  // integer (so 0 fails `< 0.5`); a fractional bound of a number field is therefore a CEL rule.
  const fractional = (key: 'minimum' | 'maximum') =>
    !words && node.type === 'number' && node[key] !== undefined && !Number.isInteger(node[key]);
  if (fractional('minimum'))
    rules.push({
      rule: `self ${node.exclusiveMinimum ? '>' : '>='} ${node.minimum}`,
      message: `must be ${node.exclusiveMinimum ? 'greater than' : 'at least'} ${node.minimum}`,
    });
  if (fractional('maximum'))
    rules.push({
      rule: `self ${node.exclusiveMaximum ? '<' : '<='} ${node.maximum}`,
      message: `must be ${node.exclusiveMaximum ? 'less than' : 'at most'} ${node.maximum}`,
    });
  if (words) return orWordsNode(node, words, rules);
  const out: OpenApiSchema = { description: node.description, type: node.type };
  if (node.format) out.format = node.format;
  if (node.enum) out.enum = [...node.enum];
  if (node.default !== undefined) out.default = node.default;
  else if (materialize) out.default = {};
  for (const key of [
    'minimum',
    'exclusiveMinimum',
    'maximum',
    'exclusiveMaximum',
    'minLength',
    'maxLength',
    'pattern',
    'maxItems',
    'x-kubernetes-list-type',
    'x-kubernetes-list-map-keys',
    'x-kubernetes-preserve-unknown-fields',
  ] as const) {
    if ((key === 'minimum' || key === 'exclusiveMinimum') && fractional('minimum')) continue;
    if ((key === 'maximum' || key === 'exclusiveMaximum') && fractional('maximum')) continue;
    if (node[key] !== undefined) out[key] = node[key];
  }
  if (node.required?.length) out.required = [...node.required];
  if (node.properties) {
    // Which absent sections run-spec's defaulting fills in: the CRD must fill in the same ones.
    const filled = applyDefaults(node as SchemaNode, {}) as Record<string, unknown>;
    out.properties = Object.fromEntries(
      Object.entries(node.properties).map(([k, child]) => [
        k,
        toOpenApi(
          child,
          path ? `${path}.${k}` : k,
          rulesAt,
          child.type === 'object' && typeof filled[k] === 'object' && filled[k] !== null,
        ),
      ]),
    );
  }
  if (node.additionalProperties)
    out.additionalProperties = toOpenApi(node.additionalProperties, `${path}.*`, () => undefined);
  if (node.items) out.items = toOpenApi(node.items, `${path}[]`, () => undefined);
  if (rules.length) out['x-kubernetes-validations'] = rules;
  return out;
}

/** spec of an RLHFRun in CRD form: the run-spec schema plus the transition and cross-field rules. */
export function rlhfRunSpecOpenApi(spec: SchemaNode = rlhfRunSpecSchema): OpenApiSchema {
  const known = new Set<string>();
  const crossField = crossFieldRules(spec);
  const rulesAt = (path: string): CelRule[] | undefined => {
    const rules = [...(transitionRules[path] ?? []), ...(crossField[path] ?? [])];
    if (rules.length) known.add(path);
    return rules.length ? rules : undefined;
  };
  const out = toOpenApi(spec, '', rulesAt);
  const lost = [...Object.keys(transitionRules), ...Object.keys(crossField)].filter((p) => !known.has(p));
  // A rule whose field was renamed or removed must not vanish silently from the CRD.
  if (lost.length) throw new Error(`crd.ts has CEL rules for fields the run spec lacks: ${lost.join(', ')}`);
  return out;
}

function resourceRoot(
  kind: string,
  spec: OpenApiSchema,
  status: OpenApiSchema,
  description: string,
): OpenApiSchema {
  return {
    description,
    type: 'object',
    required: ['spec'],
    properties: {
      apiVersion: {
        description: `APIVersion of the object: ${crdGroup}/${crdVersion}.`,
        type: 'string',
      },
      kind: { description: `Kind of the object: ${kind}.`, type: 'string' },
      // The API server allows nothing on metadata but name and generateName (not even a description); name
      // is declared so the root rule's fieldPath can point at it.
      metadata: { type: 'object', properties: { name: { type: 'string' } } },
      spec,
      status,
    },
    'x-kubernetes-validations': rootRules,
  };
}

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'date';
  jsonPath: string;
  description: string;
  priority?: number;
}

function crd(options: {
  kind: string;
  plural: string;
  shortNames: string[];
  description: string;
  spec: OpenApiSchema;
  status: OpenApiSchema;
  columns: PrinterColumn[];
}): OpenApiSchema {
  const { kind, plural } = options;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${plural}.${crdGroup}`,
      labels: { 'app.kubernetes.io/part-of': 'rlhf' },
    },
    spec: {
      group: crdGroup,
      scope: 'Namespaced',
      names: {
        kind,
        listKind: `${kind}List`,
        plural,
        singular: kind.toLowerCase(),
        shortNames: options.shortNames,
        categories: ['rlhf'],
      },
      versions: [
        {
          name: crdVersion,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: options.columns,
          schema: { openAPIV3Schema: resourceRoot(kind, options.spec, options.status, options.description) },
        },
      ],
    },
  };
}

const age: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since the object was created.',
};

export function rlhfRunCrd(spec: SchemaNode = rlhfRunSpecSchema): OpenApiSchema {
  return crd({
    kind: 'RLHFRun',
    plural: 'rlhfruns',
    shortNames: ['rr'],
    description:
      'An online iterative RLHF run (RLHF Workflow, arXiv 2405.07863). The controller creates one RLHFIteration per iteration.',
    spec: rlhfRunSpecOpenApi(spec),
    status: toOpenApi(rlhfRunStatusSchema, 'status', () => undefined),
    columns: [
      {
        name: 'Phase',
        type: 'string',
        jsonPath: '.status.phase',
        description: 'Pending, Running, Succeeded or Failed.',
      },
      { name: 'Iteration', type: 'string', jsonPath: '.status.progress', description: 'Iteration t of T.' },
      { name: 'Stage', type: 'string', jsonPath: '.status.stage', description: 'The stage in progress.' },
      {
        name: 'Reward',
        type: 'number',
        jsonPath: '.status.latest.proxyReward',
        description: 'Mean judge reward of the latest evaluated iteration.',
      },
      {
        name: 'Win Rate',
        type: 'number',
        jsonPath: '.status.latest.winRate',
        description: 'Win rate against pi_0 of the latest evaluated iteration.',
      },
      {
        name: 'Best',
        type: 'integer',
        jsonPath: '.status.bestIteration',
        description: 'Best iteration by validation reward.',
        priority: 1,
      },
      age,
    ],
  });
}

export function rlhfIterationCrd(): OpenApiSchema {
  return crd({
    kind: 'RLHFIteration',
    plural: 'rlhfiterations',
    shortNames: ['rlhfit', 'ri'],
    description: 'One iteration of an RLHFRun, created and updated by the controller (owned by the run).',
    spec: toOpenApi(rlhfIterationSpecSchema, 'iteration', () => undefined),
    status: toOpenApi(rlhfIterationStatusSchema, 'status', () => undefined),
    columns: [
      { name: 'Run', type: 'string', jsonPath: '.spec.run', description: 'The owning RLHFRun.' },
      { name: 'Iteration', type: 'integer', jsonPath: '.spec.iteration', description: 'The iteration t.' },
      {
        name: 'Phase',
        type: 'string',
        jsonPath: '.status.phase',
        description: 'Pending, Running, Succeeded or Failed.',
      },
      { name: 'Stage', type: 'string', jsonPath: '.status.stage', description: 'The stage in progress.' },
      {
        name: 'Reward',
        type: 'number',
        jsonPath: '.status.metrics.proxyReward',
        description: 'Mean judge reward on the evaluation prompts.',
      },
      {
        name: 'Win Rate',
        type: 'number',
        jsonPath: '.status.metrics.winRate',
        description: 'Win rate against pi_0.',
      },
      age,
    ],
  });
}

const header = (name: string): string =>
  [
    `# ${name}: generated by \`npm run crds:gen\` from services/run-spec (rlhf-run-schema.ts, status-schema.ts,`,
    '# crd.ts). Do not edit: change the schema and regenerate; a test checks this file is up to date.',
    '',
  ].join('\n');

/** The CRD files by file name, as `npm run crds:gen` writes them. */
export function crdFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const doc of [rlhfRunCrd(), rlhfIterationCrd()]) {
    const name = `${(doc.metadata as { name: string }).name}.yaml`;
    files[name] = header(name) + stringify(doc, { lineWidth: 0 });
  }
  return files;
}

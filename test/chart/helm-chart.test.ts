/**
 * The Helm chart, rendered offline by the real Helm binary (node scripts/fetch-helm.mjs puts it in .tools/):
 * lint --strict, several value sets, every rendered object validated against the Kubernetes API schemas
 * (kubernetes-models), and the properties that matter on a cluster: non-root read-only containers, gRPC
 * probes, least-privilege RBAC, GPU placement passed through, NATS credentials only from a Secret, and a
 * values.schema.json that makes `helm template` refuse bad values.
 *
 * The chart has no dependencies (its bundled NATS is its own template), so it renders offline as it is; the
 * tests render a copy so Helm's cache and the copy's files stay in a temp directory.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultTrainJobConfig, parseArtifactVolumes, parseTrainJobConfig } from '@rlhf/controller';
import { parse, parseAllDocuments } from 'yaml';

const root = fileURLToPath(new URL('../..', import.meta.url));
const chartDir = join(root, 'charts/rlhf');
const valuesDir = join(root, 'test/chart/values');
// Kept in step with helmVersion in scripts/fetch-helm.mjs.
const helm = join(root, '.tools/helm-v3.17.2/helm');

type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  rules?: Rule[];
  [k: string]: unknown;
};
type Rule = { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[] };
type Container = {
  name: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  ports?: { name: string; containerPort: number }[];
  securityContext?: Record<string, unknown>;
  livenessProbe?: Record<string, { port?: unknown; path?: string }>;
  readinessProbe?: Record<string, { port?: unknown; path?: string }>;
  resources?: { limits?: Record<string, unknown> };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
};
type PodSpec = {
  securityContext?: Record<string, unknown>;
  containers: Container[];
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  affinity?: unknown;
  priorityClassName?: string;
  volumes?: {
    name: string;
    emptyDir?: unknown;
    secret?: { secretName: string; items?: { key: string; path: string }[]; defaultMode?: number };
  }[];
  automountServiceAccountToken?: boolean;
};

let work = '';
let chartCopy = '';

before(() => {
  assert.ok(existsSync(helm), `the helm binary is missing at ${helm}: run \`node scripts/fetch-helm.mjs\``);
  work = mkdtempSync(join(tmpdir(), 'rlhf-chart-'));
  chartCopy = join(work, 'rlhf');
  cpSync(chartDir, chartCopy, { recursive: true });
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function runHelm(args: string[]): { status: number | null; out: string; err: string } {
  const r = spawnSync(helm, args, {
    encoding: 'utf8',
    env: { ...process.env, HELM_CACHE_HOME: join(work, 'cache') },
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

function render(valueFiles: string[], set: string[] = []): K8sObject[] {
  const args = ['template', 'rlhf', chartCopy, '--namespace', 'rlhf-system', '--include-crds'];
  for (const f of valueFiles) args.push('-f', join(valuesDir, f));
  for (const s of set) args.push('--set', s);
  const r = runHelm(args);
  assert.equal(r.status, 0, `helm template failed:\n${r.err}`);
  return parseAllDocuments(r.out)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** kubernetes-models class for apiVersion/kind, e.g. apps/v1 Deployment -> kubernetes-models/apps/v1/Deployment. */
async function validateObject(obj: K8sObject): Promise<void> {
  const mod = (await import(`kubernetes-models/${obj.apiVersion}/${obj.kind}`)) as Record<
    string,
    new (
      o: unknown,
    ) => { validate(): void }
  >;
  const Model = mod[obj.kind];
  assert.ok(Model, `no kubernetes-models class for ${obj.apiVersion} ${obj.kind}`);
  try {
    new Model(obj).validate();
  } catch (e) {
    assert.fail(
      `${obj.kind} ${obj.metadata.name} is not a valid ${obj.apiVersion} ${obj.kind}: ${(e as Error).message}`,
    );
  }
}

const podSpec = (o: K8sObject): PodSpec => (o.spec as { template: { spec: PodSpec } }).template.spec;
const byKind = (objs: K8sObject[], kind: string) => objs.filter((o) => o.kind === kind);
const named = (objs: K8sObject[], kind: string, suffix: string): K8sObject => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name.endsWith(suffix));
  assert.ok(o, `no ${kind} named *${suffix}`);
  return o;
};
const serviceNames = ['policy-generator', 'reward-model', 'preference-model', 'dpo-trainer'];

const valueSets: Record<string, string[]> = {
  defaults: [],
  'gpu placement': ['gpu-placement.yaml'],
  'external NATS from a Secret': ['external-nats-secret.yaml'],
  'NATS disabled, plain URL': ['nats-disabled.yaml'],
  'artifact volumes': ['artifact-volumes.yaml'],
  'NATS credentials and TLS from Secrets': ['nats-auth.yaml'],
  'OpenAI API on the policy generator': ['openai.yaml'],
};

test('helm lint --strict passes', () => {
  const r = runHelm(['lint', '--strict', chartCopy]);
  assert.equal(r.status, 0, `helm lint failed:\n${r.out}${r.err}`);
});

test('Chart.yaml declares no dependencies: helm install needs nothing fetched, with or without NATS', () => {
  const meta = parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as { dependencies?: unknown[] };
  assert.equal(meta.dependencies, undefined);
});

test('the bundled NATS: one hardened nats-server with JetStream on a claim, behind <release>-nats', async () => {
  const objs = render([], ['nats.jetstream.size=3Gi', 'nats.jetstream.storageClassName=fast']);
  const sts = named(objs, 'StatefulSet', '-nats');
  await validateObject(sts);
  const pod = podSpec(sts);
  assert.equal(pod.securityContext?.runAsNonRoot, true);
  const c = pod.containers[0];
  assert.ok(c);
  assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
  assert.ok(c.args?.includes('--jetstream'));
  assert.ok(c.args?.includes('--store_dir=/data'));
  assert.match(c.readinessProbe?.httpGet?.path ?? '', /js-enabled-only=true/);
  const claim = (
    sts.spec as {
      volumeClaimTemplates: { metadata: { name: string }; spec: Record<string, unknown> }[];
    }
  ).volumeClaimTemplates[0];
  assert.equal(claim?.metadata.name, 'data');
  assert.deepEqual(claim?.spec.resources, { requests: { storage: '3Gi' } });
  assert.equal(claim?.spec.storageClassName, 'fast');
  const svc = objs.find((o) => o.kind === 'Service' && o.metadata.name === 'rlhf-nats');
  assert.ok(svc, 'the Service NATS_URL names');
  assert.equal((svc.spec as { ports: { port: number }[] }).ports[0]?.port, 4222);
  const external = render(['nats-disabled.yaml']);
  assert.ok(!external.some((o) => o.metadata.name.startsWith('rlhf-nats')), 'nats.enabled false: no NATS');
  const old = runHelm(['template', 'rlhf', chartCopy, '--set', 'nats.config.jetstream.enabled=true']);
  assert.notEqual(old.status, 0, 'a leftover nats.config is refused, not ignored');
  assert.match(old.err, /config/);
});

for (const [label, files] of Object.entries(valueSets)) {
  test(`helm template (${label}): valid Kubernetes objects, hardened, probed, least privilege`, async () => {
    const objs = render(files);
    for (const o of objs) await validateObject(o);
    assert.equal(byKind(objs, 'CustomResourceDefinition').length, 2, 'the two CRDs from crds/');

    const deployments = byKind(objs, 'Deployment');
    assert.ok(deployments.length >= 4, 'controller and services');
    for (const d of deployments) {
      const pod = podSpec(d);
      assert.equal(pod.securityContext?.runAsNonRoot, true, `${d.metadata.name}: runAsNonRoot`);
      assert.ok((pod.securityContext?.runAsUser as number) > 0, `${d.metadata.name}: runAsUser`);
      for (const c of pod.containers) {
        const where = `${d.metadata.name}/${c.name}`;
        assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
        assert.equal(
          c.securityContext?.allowPrivilegeEscalation,
          false,
          `${where}: allowPrivilegeEscalation`,
        );
        assert.deepEqual(
          (c.securityContext?.capabilities as { drop?: string[] } | undefined)?.drop,
          ['ALL'],
          where,
        );
        const tmp = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
        assert.ok(
          tmp && pod.volumes?.some((v) => v.name === tmp.name && v.emptyDir),
          `${where}: /tmp emptyDir`,
        );
        assert.ok(c.livenessProbe && c.readinessProbe, `${where}: probes`);
        const nats = c.env?.find((e) => e.name === 'NATS_URL');
        assert.ok(nats, `${where}: NATS_URL`);
        assert.ok(!/\/\/[^/@]+:[^/@]+@/.test(nats.value ?? ''), `${where}: credentials in a plain env value`);
      }
    }

    for (const name of serviceNames) {
      const d = deployments.find((x) => x.metadata.name.endsWith(`-${name}`));
      if (!d) continue;
      const [c] = podSpec(d).containers;
      assert.ok(c);
      assert.deepEqual(c.args, ['serve', name]);
      const grpcPort = c.ports?.find((p) => p.name === 'grpc')?.containerPort;
      assert.ok(grpcPort, `${name}: grpc port`);
      assert.equal(c.livenessProbe?.grpc?.port, grpcPort, `${name}: gRPC liveness probe on the service port`);
      assert.equal(
        c.readinessProbe?.grpc?.port,
        grpcPort,
        `${name}: gRPC readiness probe on the service port`,
      );
      assert.ok(
        c.volumeMounts?.some((m) => m.mountPath === '/var/cache/rlhf'),
        `${name}: model cache volume`,
      );
      assert.equal(podSpec(d).automountServiceAccountToken, false, `${name}: no API token`);
      assert.equal(c.env?.find((e) => e.name === 'HOST')?.value, '0.0.0.0', `${name}: binds every interface`);
      const tokenFile = c.env?.find((e) => e.name === 'RLHF_AUTH_TOKEN_FILE')?.value;
      assert.ok(tokenFile, `${name}: the bearer token file`);
      assert.ok(
        !c.env?.some((e) => e.name === 'RLHF_AUTH_TOKEN'),
        `${name}: the token itself is not in the environment`,
      );
      const mount = c.volumeMounts?.find((m) => tokenFile.startsWith(`${m.mountPath}/`));
      assert.ok(mount?.readOnly, `${name}: the token file is on a read-only mount`);
      assert.ok(
        podSpec(d).volumes?.some((v) => v.name === mount.name && v.secret),
        `${name}: the token mount is a Secret`,
      );
      const svc = named(objs, 'Service', `-${name}`);
      assert.ok(((svc.spec?.ports ?? []) as { port: number }[]).some((p) => p.port === grpcPort));
    }

    const controller = named(objs, 'Deployment', '-controller');
    const [cc] = podSpec(controller).containers;
    assert.deepEqual(cc?.args, ['controller']);
    assert.equal(cc?.livenessProbe?.httpGet?.path, '/healthz');
    assert.equal(cc?.readinessProbe?.httpGet?.path, '/readyz');
    assert.ok(cc?.env?.some((e) => e.name === 'LEADER_ELECT' && e.value === 'true'));

    const roles = [...byKind(objs, 'Role'), ...byKind(objs, 'ClusterRole')];
    assert.ok(roles.length >= 2, 'controller role and leader-election role');
    for (const r of roles)
      for (const rule of r.rules ?? []) {
        for (const field of [rule.verbs, rule.resources ?? [], rule.apiGroups ?? []])
          assert.ok(!field.includes('*'), `${r.metadata.name}: wildcard in ${JSON.stringify(rule)}`);
      }
    const grants = (resource: string): string[] =>
      roles.flatMap((r) =>
        (r.rules ?? []).filter((x) => x.resources?.includes(resource)).flatMap((x) => x.verbs),
      );
    assert.deepEqual(
      grants('pods'),
      [],
      'no access to pods (test/controller/rbac.test.ts checks every grant)',
    );
    assert.ok(grants('rlhfruns/status').includes('patch'));
    assert.ok(grants('rlhfruns/finalizers').includes('update'));
    assert.ok(grants('jobs').includes('create'));
    assert.ok(grants('events').includes('create'));
    assert.ok(!grants('secrets').length, 'no access to Secrets');
    const leases = roles.filter((r) => r.rules?.some((x) => x.resources?.includes('leases')));
    assert.ok(
      leases.length && leases.every((r) => r.kind === 'Role'),
      'leases only in the release namespace',
    );
  });
}

test('GPU placement values reach the pods; PDBs appear for replicated services', () => {
  const objs = render(['gpu-placement.yaml']);
  const gen = podSpec(named(objs, 'Deployment', '-policy-generator'));
  assert.deepEqual(gen.nodeSelector, { 'nvidia.com/gpu.product': 'H100' });
  assert.deepEqual(gen.tolerations, [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
  assert.ok(gen.affinity);
  assert.equal(gen.priorityClassName, 'rlhf-gpu');
  assert.equal(gen.containers[0]?.resources?.limits?.['nvidia.com/gpu'], 1);
  assert.match((gen.containers[0] as unknown as { image: string }).image, /:0\.1\.0-cuda$/);
  assert.equal(
    podSpec(named(objs, 'Deployment', '-dpo-trainer')).containers[0]?.resources?.limits?.['nvidia.com/gpu'],
    8,
  );
  const pdbs = byKind(objs, 'PodDisruptionBudget').map((p) => p.metadata.name);
  assert.deepEqual(pdbs, ['rlhf-policy-generator'], 'only the service with 4 replicas gets a PDB');
});

test('the OpenAI-compatible API: off by default; when enabled, its port on the generator pod and Service only', () => {
  const portsOf = (objs: K8sObject[], name: string) => ({
    container: podSpec(named(objs, 'Deployment', `-${name}`)).containers[0]?.ports?.map((p) => p.name),
    service: (named(objs, 'Service', `-${name}`).spec as { ports: { name: string }[] }).ports.map(
      (p) => p.name,
    ),
    env: podSpec(named(objs, 'Deployment', `-${name}`)).containers[0]?.env?.filter((e) =>
      e.name.startsWith('OPENAI_'),
    ),
  });
  const off = render([]);
  for (const name of serviceNames)
    assert.deepEqual(
      portsOf(off, name),
      { container: ['grpc', 'metrics'], service: ['grpc', 'metrics'], env: [] },
      name,
    );

  const objs = render(['openai.yaml']);
  const gen = portsOf(objs, 'policy-generator');
  assert.deepEqual(gen.container, ['grpc', 'metrics', 'openai']);
  assert.deepEqual(gen.service, ['grpc', 'metrics', 'openai']);
  assert.deepEqual(gen.env, [
    { name: 'OPENAI_PORT', value: '8001' },
    { name: 'OPENAI_MODELS', value: 'policy=nats-obj://rlhf-models/policy-iter-2' },
  ]);
  const container = podSpec(named(objs, 'Deployment', '-policy-generator')).containers[0];
  assert.equal(container?.ports?.find((p) => p.name === 'openai')?.containerPort, 8001);
  const svcPort = (
    named(objs, 'Service', '-policy-generator').spec as { ports: Record<string, unknown>[] }
  ).ports.find((p) => p.name === 'openai');
  assert.deepEqual(svcPort, { name: 'openai', port: 8001, targetPort: 'openai', appProtocol: 'http' });
  // The API shares the gRPC token: the pod has it whenever auth is on (the default).
  assert.ok(container?.env?.some((e) => e.name === 'RLHF_AUTH_TOKEN_FILE'));
  for (const name of serviceNames.filter((n) => n !== 'policy-generator'))
    assert.deepEqual(portsOf(objs, name).service, ['grpc', 'metrics'], name);
});

test("every service sizes ONNX Runtime's threads to its container's CPU limit", () => {
  const objs = render([]);
  for (const name of ['policy-generator', 'reward-model', 'preference-model', 'dpo-trainer']) {
    const container = podSpec(named(objs, 'Deployment', `-${name}`)).containers[0];
    const env = container?.env?.find((e) => e.name === 'RLHF_ORT_THREADS');
    assert.deepEqual(
      env?.valueFrom,
      { resourceFieldRef: { containerName: name, resource: 'limits.cpu', divisor: '1' } },
      name,
    );
  }
});

test('bundled NATS points at its Service; external NATS comes from the Secret', () => {
  const bundled = podSpec(named(render([]), 'Deployment', '-reward-model')).containers[0]?.env;
  assert.equal(bundled?.find((e) => e.name === 'NATS_URL')?.value, 'nats://rlhf-nats.rlhf-system.svc:4222');
  const objs = render(['external-nats-secret.yaml']);
  for (const d of byKind(objs, 'Deployment')) {
    const env = podSpec(d).containers[0]?.env?.find((e) => e.name === 'NATS_URL');
    assert.deepEqual(env?.valueFrom?.secretKeyRef, { name: 'rlhf-nats', key: 'url' }, d.metadata.name);
  }
  // The controller hands the Secret (not its value) to the stage Jobs it creates.
  const ctlEnv = podSpec(named(objs, 'Deployment', '-controller')).containers[0]?.env ?? [];
  assert.equal(ctlEnv.find((e) => e.name === 'RLHF_WORKER_NATS_SECRET')?.value, 'rlhf-nats');
  assert.equal(ctlEnv.find((e) => e.name === 'RLHF_WORKER_NATS_SECRET_KEY')?.value, 'url');
  assert.equal(byKind(objs, 'ClusterRole').length, 1, 'clusterWide: a ClusterRole for the resources');
  assert.ok(byKind(objs, 'PodDisruptionBudget').some((p) => p.metadata.name.endsWith('-controller')));
  const disabled = render(['nats-disabled.yaml']);
  assert.ok(!byKind(disabled, 'Deployment').some((d) => d.metadata.name.endsWith('-preference-model')));
});

test('the bearer token: a generated Secret by default, an existing one when named, none when off', () => {
  const tokenVolume = (objs: K8sObject[], name: string) => {
    const pod = podSpec(named(objs, 'Deployment', `-${name}`));
    const env = pod.containers[0]?.env?.find((e) => e.name === 'RLHF_AUTH_TOKEN_FILE');
    const volume = pod.volumes?.find((v) => v.name === 'auth-token');
    return { file: env?.value, secret: volume?.secret };
  };
  const defaults = render([]);
  const secrets = byKind(defaults, 'Secret');
  assert.deepEqual(
    secrets.map((x) => x.metadata.name),
    ['rlhf-auth'],
  );
  const data = (secrets[0] as unknown as { data: Record<string, string> }).data;
  const token = Buffer.from(data.token ?? '', 'base64').toString();
  assert.match(token, /^[A-Za-z0-9]{48}$/, 'a random 48-character token');
  const again = byKind(render([]), 'Secret')[0] as unknown as { data: Record<string, string> };
  assert.notEqual(again.data.token, data.token, 'a fresh install gets a fresh token');
  for (const name of serviceNames) {
    const v = tokenVolume(defaults, name);
    assert.equal(v.file, '/var/run/secrets/rlhf/auth/token', name);
    assert.equal(v.secret?.secretName, 'rlhf-auth', name);
    assert.deepEqual(v.secret?.items, [{ key: 'token', path: 'token' }], name);
    assert.equal(v.secret?.defaultMode, 0o440, name);
  }

  const existing = render([], ['auth.existingSecret=team-token', 'auth.tokenKey=bearer']);
  assert.equal(byKind(existing, 'Secret').length, 0, 'no Secret made when one is named');
  for (const name of serviceNames) {
    const v = tokenVolume(existing, name);
    assert.equal(v.file, '/var/run/secrets/rlhf/auth/bearer', name);
    assert.equal(v.secret?.secretName, 'team-token', name);
  }

  const off = render([], ['auth.enabled=false']);
  assert.equal(byKind(off, 'Secret').length, 0);
  for (const name of serviceNames)
    assert.deepEqual(tokenVolume(off, name), { file: undefined, secret: undefined });
});

test('TLS from a Secret: certificate files, the mutual CA, a per-service allow-list, HTTP probes', async () => {
  const objs = render(
    [],
    [
      'tls.existingSecret=svc-tls',
      'tls.mutual=true',
      'services.dpoTrainer.tlsAllowedClients={dns:trainer-client,uri:spiffe://td/ns/rlhf/sa/cli}',
    ],
  );
  for (const o of objs) await validateObject(o);
  for (const name of serviceNames) {
    const pod = podSpec(named(objs, 'Deployment', `-${name}`));
    const c = pod.containers[0];
    assert.ok(c);
    const env = (k: string) => c.env?.find((e) => e.name === k)?.value;
    assert.equal(env('TLS_CERT'), '/var/run/secrets/rlhf/tls/tls.crt', name);
    assert.equal(env('TLS_KEY'), '/var/run/secrets/rlhf/tls/tls.key', name);
    assert.equal(env('TLS_CLIENT_CA'), '/var/run/secrets/rlhf/tls/ca.crt', name);
    assert.equal(
      env('TLS_ALLOWED_CLIENTS'),
      name === 'dpo-trainer' ? 'dns:trainer-client,uri:spiffe://td/ns/rlhf/sa/cli' : undefined,
      name,
    );
    const mount = c.volumeMounts?.find((m) => m.mountPath === '/var/run/secrets/rlhf/tls');
    assert.ok(mount?.readOnly, name);
    assert.equal(pod.volumes?.find((v) => v.name === mount.name)?.secret?.secretName, 'svc-tls', name);
    // The kubelet's gRPC probe speaks plaintext only.
    assert.deepEqual(c.livenessProbe?.httpGet, { path: '/healthz', port: 'metrics' }, name);
    assert.deepEqual(c.readinessProbe?.httpGet, { path: '/readyz', port: 'metrics' }, name);
  }
  const serverOnly = podSpec(
    named(render([], ['tls.existingSecret=svc-tls']), 'Deployment', '-reward-model'),
  );
  assert.ok(!serverOnly.containers[0]?.env?.some((e) => e.name === 'TLS_CLIENT_CA'), 'no client CA');

  for (const [set, message] of [
    [
      ['services.rewardModel.tlsAllowedClients={dns:a}'],
      /services\.rewardModel\.tlsAllowedClients needs mutual TLS/,
    ],
    [['tls.existingSecret=svc-tls', 'services.rewardModel.tlsAllowedClients={dns:a}'], /needs mutual TLS/],
    [['services.rewardModel.tlsAllowedClients={a b}'], /tlsAllowedClients/],
  ] as const) {
    const args = ['template', 'rlhf', chartCopy];
    for (const x of set) args.push('--set', x);
    const r = runHelm(args);
    assert.notEqual(r.status, 0, `helm template accepted ${set.join(' ')}`);
    assert.match(r.err, message);
  }
});

test('artifacts.s3: the services get the S3 endpoint, region, path-style and a Secret key pair; none by default', () => {
  const names = [
    'AWS_ENDPOINT_URL_S3',
    'AWS_REGION',
    'RLHF_S3_PATH_STYLE',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
  ];
  for (const d of byKind(render([]), 'Deployment')) {
    const env = podSpec(d).containers[0]?.env ?? [];
    assert.ok(!env.some((e) => names.includes(e.name)), `${d.metadata.name}: no S3 settings by default`);
  }
  const objs = render(['s3.yaml']);
  for (const name of serviceNames) {
    const c = podSpec(named(objs, 'Deployment', `-${name}`)).containers[0] as unknown as {
      env: Array<{
        name: string;
        value?: string;
        valueFrom?: { secretKeyRef?: { name: string; key: string } };
      }>;
    };
    const env = new Map(c.env.map((e) => [e.name, e]));
    assert.equal(env.get('AWS_ENDPOINT_URL_S3')?.value, 'http://minio.storage.svc:9000');
    assert.equal(env.get('AWS_REGION')?.value, 'eu-west-1');
    assert.equal(env.get('RLHF_S3_PATH_STYLE')?.value, 'true');
    assert.deepEqual(env.get('AWS_ACCESS_KEY_ID')?.valueFrom?.secretKeyRef, {
      name: 'rlhf-s3',
      key: 'AWS_ACCESS_KEY_ID',
    });
    assert.deepEqual(env.get('AWS_SECRET_ACCESS_KEY')?.valueFrom?.secretKeyRef, {
      name: 'rlhf-s3',
      key: 'AWS_SECRET_ACCESS_KEY',
    });
  }
  const bad = runHelm(['template', 'x', chartCopy, '--set', 'artifacts.s3.pathStyle=yes']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.err, /pathStyle/);
});

test('artifacts.s3 and huggingface reach the controller as JSON for its stage Jobs; the services get HF_HOME on the cache', () => {
  type Env = Array<{
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string } };
  }>;
  const controllerEnv = (objs: ReturnType<typeof render>) =>
    new Map(
      ((podSpec(named(objs, 'Deployment', '-controller')).containers[0]?.env ?? []) as Env).map((e) => [
        e.name,
        e,
      ]),
    );
  const plain = controllerEnv(render([]));
  assert.ok(!plain.has('RLHF_WORKER_S3') && !plain.has('RLHF_WORKER_HF'), 'neither by default');
  for (const d of byKind(render([]), 'Deployment'))
    assert.ok(!(podSpec(d).containers[0]?.env ?? []).some((e) => e.name === 'HF_HOME'), d.metadata.name);
  const objs = render(['s3.yaml', 'huggingface.yaml']);
  const env = controllerEnv(objs);
  assert.deepEqual(JSON.parse(env.get('RLHF_WORKER_S3')?.value ?? '{}'), {
    endpoint: 'http://minio.storage.svc:9000',
    region: 'eu-west-1',
    pathStyle: 'true',
    existingSecret: 'rlhf-s3',
    accessKeyIdKey: 'AWS_ACCESS_KEY_ID',
    secretAccessKeyKey: 'AWS_SECRET_ACCESS_KEY',
  });
  const hf = JSON.parse(env.get('RLHF_WORKER_HF')?.value ?? '{}');
  assert.equal(hf.enabled, true);
  assert.equal(hf.cache.claimName, 'hf-cache');
  assert.deepEqual(hf.tokenSecret, { name: 'hf-token', key: 'HF_TOKEN' });
  for (const name of serviceNames) {
    const pod = podSpec(named(objs, 'Deployment', `-${name}`));
    const c = pod.containers[0] as unknown as {
      env: Env;
      volumeMounts: Array<{ name: string; mountPath: string }>;
    };
    const e = new Map(c.env.map((x) => [x.name, x]));
    assert.equal(e.get('HF_HOME')?.value, '/var/cache/huggingface');
    assert.equal(e.get('HF_ENDPOINT')?.value, 'https://hub.mirror.example');
    assert.deepEqual(e.get('HF_TOKEN')?.valueFrom?.secretKeyRef, { name: 'hf-token', key: 'HF_TOKEN' });
    assert.ok(c.volumeMounts.some((m) => m.name === 'hf-cache' && m.mountPath === '/var/cache/huggingface'));
    const volumes = (pod as unknown as { volumes: Array<{ name: string; persistentVolumeClaim?: unknown }> })
      .volumes;
    assert.deepEqual(volumes.find((v) => v.name === 'hf-cache')?.persistentVolumeClaim, {
      claimName: 'hf-cache',
    });
  }
  // The values docs/BRING-YOUR-OWN.md shows render to the same settings.
  const byo = controllerEnv(render(['../../../deploy/examples/bring-your-own-values.yaml']));
  assert.equal(JSON.parse(byo.get('RLHF_WORKER_S3')?.value ?? '{}').existingSecret, 'rlhf-s3');
  assert.equal(JSON.parse(byo.get('RLHF_WORKER_HF')?.value ?? '{}').cache.claimName, 'hf-cache');
  const bad = runHelm(['template', 'x', chartCopy, '--set', 'huggingface.cache.sizeLimit=lots']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.err, /sizeLimit/);
});

test('artifact volumes: mounted into every service as its artifact roots; the controller hands them to stage Jobs', () => {
  for (const d of byKind(render([]), 'Deployment')) {
    const env = podSpec(d).containers[0]?.env ?? [];
    assert.ok(!env.some((e) => e.name === 'RLHF_ARTIFACT_ROOTS'), `${d.metadata.name}: no roots by default`);
  }
  const objs = render(['artifact-volumes.yaml']);
  for (const name of serviceNames) {
    const pod = podSpec(named(objs, 'Deployment', `-${name}`));
    const c = pod.containers[0] as unknown as {
      env: Array<{ name: string; value?: string }>;
      volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
    };
    // RLHF_ARTIFACT_ROOTS is the variable of --artifact-root (colon-separated).
    assert.equal(c.env.find((e) => e.name === 'RLHF_ARTIFACT_ROOTS')?.value, '/data/rlhf:/data/out');
    assert.deepEqual(
      c.volumeMounts.filter((m) => m.name.startsWith('artifacts-')),
      [
        { name: 'artifacts-datasets', mountPath: '/data/rlhf', readOnly: true },
        { name: 'artifacts-outputs', mountPath: '/data/out' },
      ],
    );
    const volumes = (pod as unknown as { volumes: Array<{ name: string; persistentVolumeClaim?: object }> })
      .volumes;
    assert.deepEqual(
      volumes.filter((v) => v.name.startsWith('artifacts-')),
      [
        { name: 'artifacts-datasets', persistentVolumeClaim: { claimName: 'rlhf-datasets', readOnly: true } },
        { name: 'artifacts-outputs', persistentVolumeClaim: { claimName: 'rlhf-outputs' } },
      ],
    );
  }
  const ctlEnv = podSpec(named(objs, 'Deployment', '-controller')).containers[0]?.env ?? [];
  const handed = parseArtifactVolumes(ctlEnv.find((e) => e.name === 'RLHF_WORKER_ARTIFACT_VOLUMES')?.value);
  assert.deepEqual(handed, [
    { name: 'datasets', mountPath: '/data/rlhf', claimName: 'rlhf-datasets', readOnly: true },
    { name: 'outputs', mountPath: '/data/out', claimName: 'rlhf-outputs' },
  ]);
});

test('trainJob values reach the controller as RLHF_TRAINJOB; its Role may list, create and delete TrainJobs', () => {
  const trainJobEnv = (objs: ReturnType<typeof render>) =>
    (podSpec(named(objs, 'Deployment', '-controller')).containers[0]?.env ?? []).find(
      (e) => e.name === 'RLHF_TRAINJOB',
    )?.value;
  // The chart's defaults are the controller's own.
  assert.deepEqual(parseTrainJobConfig(trainJobEnv(render([]))), defaultTrainJobConfig);
  const objs = render(['trainjob.yaml']);
  assert.deepEqual(parseTrainJobConfig(trainJobEnv(objs)), {
    runtime: 'torch-h100',
    image: 'ghcr.io/example/trl:1.16',
    command: ['accelerate-launch-trl', 'dpo'],
    replicatedJob: 'node',
    container: 'node',
  });
  const role = named(objs, 'Role', '-controller') as unknown as {
    rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>;
  };
  assert.deepEqual(
    role.rules.filter((r) => r.apiGroups.includes('trainer.kubeflow.org')),
    [{ apiGroups: ['trainer.kubeflow.org'], resources: ['trainjobs'], verbs: ['list', 'create', 'delete'] }],
  );
  const bad = runHelm(['template', 'x', chartCopy, '--set', 'trainJob.runtime=Not_A_Name']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.err, /trainJob\.runtime|runtime/);
});

test('NATS credentials and TLS: files from read-only Secret mounts in every pod, handed on to stage Jobs', () => {
  const objs = render(['nats-auth.yaml']);
  for (const d of byKind(objs, 'Deployment')) {
    const pod = podSpec(d);
    const c = pod.containers[0] as Container;
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.NATS_USER, 'rlhf-platform', d.metadata.name);
    assert.equal(env.NATS_PASSWORD_FILE, '/etc/rlhf/nats-auth/password', d.metadata.name);
    assert.equal(env.NATS_NKEY_SEED_FILE, '/etc/rlhf/nats-auth/nkey.seed', d.metadata.name);
    assert.equal(env.NATS_TLS_CA, '/etc/rlhf/nats-tls/ca.crt', d.metadata.name);
    assert.equal(env.NATS_TLS_CERT, '/etc/rlhf/nats-tls/tls.crt', d.metadata.name);
    assert.equal(env.NATS_TLS_KEY, '/etc/rlhf/nats-tls/tls.key', d.metadata.name);
    assert.equal(env.NATS_TOKEN_FILE, undefined, 'a key left "" is not used');
    for (const [volume, secretName, mountPath] of [
      ['nats-auth', 'rlhf-nats-auth', '/etc/rlhf/nats-auth'],
      ['nats-tls', 'rlhf-nats-tls', '/etc/rlhf/nats-tls'],
    ]) {
      assert.deepEqual(
        c.volumeMounts?.find((m) => m.name === volume),
        { name: volume, mountPath, readOnly: true },
        `${d.metadata.name} ${volume}`,
      );
      const v = pod.volumes?.find((x) => x.name === volume) as
        | { secret?: { secretName: string } }
        | undefined;
      assert.equal(v?.secret?.secretName, secretName, `${d.metadata.name} ${volume}`);
    }
  }
  const ctlEnv = podSpec(named(objs, 'Deployment', '-controller')).containers[0]?.env ?? [];
  assert.equal(ctlEnv.find((e) => e.name === 'RLHF_WORKER_NATS_AUTH_SECRET')?.value, 'rlhf-nats-auth');
  assert.equal(ctlEnv.find((e) => e.name === 'RLHF_WORKER_NATS_TLS_SECRET')?.value, 'rlhf-nats-tls');
  const plain = podSpec(named(render([]), 'Deployment', '-reward-model'));
  assert.ok(
    !(plain.containers[0]?.env ?? []).some((e) => e.name.startsWith('NATS_') && e.name !== 'NATS_URL'),
  );
  assert.ok(!(plain.volumes ?? []).some((v) => v.name.startsWith('nats-')));
});

test('values.schema.json and required values make helm template refuse bad values', () => {
  const bad: [string[], RegExp][] = [
    [['services.rewardModel.replicas=-1'], /services\.rewardModel\.replicas/],
    [['services.rewardModel.replica=2'], /replica/],
    [['securityContext.readOnlyRootFilesystem=false'], /readOnlyRootFilesystem/],
    [['podSecurityContext.runAsNonRoot=false'], /runAsNonRoot/],
    [['image.pullPolicy=Sometimes'], /pullPolicy/],
    [['nats.external.url=http://nats:4222', 'nats.enabled=false'], /nats\.external\.url/],
    [['nats.enabled=false'], /set nats\.external\.url or nats\.external\.existingSecret/],
    [['nats.auth.password=hunter2'], /password/],
    [['nats.tls.verify=true'], /verify/],
    [['services.policyGenerator.resources.limits.nvidia\\.com/gpu=lots'], /nvidia\.com\/gpu/],
    [['auth.enabled=maybe'], /auth\.enabled/],
    [['auth.tokenKey=a b'], /auth\.tokenKey/],
    [['auth.existingSecret=Not_A_Name'], /auth\.existingSecret/],
    [['auth.secret=x'], /secret/],
    [
      [
        'artifacts.volumes[0].name=data',
        'artifacts.volumes[0].mountPath=relative',
        'artifacts.volumes[0].claimName=c',
      ],
      /mountPath/,
    ],
    [['artifacts.volumes[0].name=data', 'artifacts.volumes[0].mountPath=/data'], /claimName/],
    [
      ['services.policyGenerator.openai.enabled=true', 'services.policyGenerator.openai.port=70000'],
      /openai\.port/,
    ],
    [
      ['services.policyGenerator.openai.enabled=true', 'services.policyGenerator.openai.models[0]=no-uri'],
      /openai\.models/,
    ],
    [['services.rewardModel.openai.enabled=true'], /rewardModel/],
  ];
  for (const [set, message] of bad) {
    const args = ['template', 'rlhf', chartCopy];
    for (const s of set) args.push('--set', s);
    const r = runHelm(args);
    assert.notEqual(r.status, 0, `helm template accepted ${set.join(' ')}`);
    assert.match(r.err, message, `helm template rejected ${set.join(' ')} for another reason:\n${r.err}`);
  }
});

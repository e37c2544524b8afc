/**
 * The Python and Go client code of the rlhf.v1 contract, generated from proto/buf.gen.python-go.yaml into a
 * temporary directory (they are never committed): a Python grpcio client drives a real dpo-trainer over
 * loopback through the generated code (capabilities, a DPO job started twice under one id, the job list,
 * an objective this process does not train, the watch to the end), and the Go code passes `go vet` and
 * `go build` in a throwaway module. The tools are cached in .tools/ by `node scripts/codegen-tools.mjs`
 * (which `npm test` runs first); a missing one fails here with the command that installs it.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createDpoTrainerService } from '@rlhf/dpo-trainer';
import { type RunningService, serveService } from '@rlhf/platform';
import { baseModel, writePairs } from '../helpers/judge-models.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const buf = join(repo, 'node_modules', '.bin', 'buf');

let dir: string;
let generated: string;
let tools: { python: string; goBin: string };

/**
 * Runs a command to its end and returns its stdout; fails the test with its output otherwise. Asynchronous,
 * so a server in this process keeps answering while the command talks to it.
 */
function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, ...opts }, (err, stdout, stderr) =>
      err
        ? reject(
            new assert.AssertionError({ message: `${cmd} ${args.join(' ')} failed:\n${stderr}\n${stdout}` }),
          )
        : resolve(stdout),
    ),
  );
}

before(async () => {
  const check = spawnSync(process.execPath, [join(repo, 'scripts/codegen-tools.mjs'), '--check'], {
    encoding: 'utf8',
  });
  assert.equal(check.status, 0, `the code generators and runtimes are not all installed:\n${check.stderr}`);
  tools = JSON.parse(check.stdout) as typeof tools;
  dir = await mkdtemp(join(tmpdir(), 'rlhf-clients-'));
  generated = join(dir, 'generated');
  await run(buf, ['generate', '--template', 'buf.gen.python-go.yaml', '--output', generated], {
    cwd: join(repo, 'proto'),
  });
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The Python client: every call through the generated messages and client class; prints what it saw as JSON. */
const pythonClient = `
import json, sys
import grpc
from rlhf.v1 import common_pb2, training_pb2, training_jobs_pb2 as tj, training_jobs_pb2_grpc as tj_grpc

address, model_uri, data_uri, output_uri = sys.argv[1:5]
seen = {}
with grpc.insecure_channel(address) as channel:
    jobs = tj_grpc.TrainingJobsServiceStub(channel)
    caps = jobs.GetTrainingCapabilities(tj.GetTrainingCapabilitiesRequest(), timeout=10)
    seen["objectives"] = [training_pb2.TrainingObjective.Name(o) for o in caps.objectives]
    request = tj.StartTrainingJobRequest(
        job_id="py-client",
        objective=training_pb2.TRAINING_OBJECTIVE_DPO,
        model=common_pb2.ModelRef(uri=model_uri),
        dataset=common_pb2.DatasetRef(uri=data_uri),
        hyperparameters=training_pb2.TrainingHyperparameters(max_steps=2, batch_size=8),
        dpo=training_pb2.DpoParams(beta=0.1, loss_type=training_pb2.DPO_LOSS_TYPE_IPO),
        output_uri=output_uri,
        labels={"client": "python"},
    )
    started = jobs.StartTrainingJob(request, timeout=30).job
    again = jobs.StartTrainingJob(request, timeout=30).job
    seen["ids"] = [started.id, again.id]
    listed = jobs.ListTrainingJobs(tj.ListTrainingJobsRequest(page_size=10), timeout=10)
    seen["listed"] = [[j.id, j.labels["client"]] for j in listed.jobs]
    try:
        jobs.StartTrainingJob(
            tj.StartTrainingJobRequest(
                objective=training_pb2.TRAINING_OBJECTIVE_REWARD_MODEL,
                model=common_pb2.ModelRef(uri=model_uri),
                dataset=common_pb2.DatasetRef(uri=data_uri),
                output_uri=output_uri + "-rm",
            ),
            timeout=10,
        )
        seen["other_objective"] = "accepted"
    except grpc.RpcError as e:
        seen["other_objective"] = [e.code().name, e.details()]
    events = list(jobs.WatchTrainingJob(tj.WatchTrainingJobRequest(job_id=started.id), timeout=120))
    last = events[-1].event
    seen["final"] = [last.WhichOneof("event"), training_pb2.JobState.Name(last.finished.state), last.finished.output.uri]
print(json.dumps(seen))
`;

test('Python: a grpcio client drives a dpo-trainer through the generated code', async () => {
  const policy = await baseModel(dir, 'policy', 'lm');
  const pairs = await writePairs(join(dir, 'pairs.jsonl'), 16, 3);
  const output = join(dir, 'out', 'py-dpo');
  let service: RunningService | null = null;
  try {
    service = await serveService(
      createDpoTrainerService({
        cacheDir: join(dir, 'cache'),
        workDir: join(dir, 'work'),
        trainWorker: false,
      }),
      { host: '127.0.0.1', port: 0, logLevel: 'error', artifactRoots: [dir] },
    );
    const script = join(dir, 'client.py');
    await writeFile(script, pythonClient);
    const out = await run(
      tools.python,
      [script, `127.0.0.1:${service.grpcPort}`, `file://${policy}`, `file://${pairs}`, `file://${output}`],
      { env: { ...process.env, PYTHONPATH: join(generated, 'python') } },
    );
    const seen = JSON.parse(out) as {
      objectives: string[];
      ids: string[];
      listed: string[][];
      other_objective: string[] | string;
      final: string[];
    };
    assert.deepEqual(seen.objectives, ['TRAINING_OBJECTIVE_SFT', 'TRAINING_OBJECTIVE_DPO']);
    assert.deepEqual(seen.ids, ['py-client', 'py-client'], 'a retried start returns the same job');
    assert.deepEqual(seen.listed, [['py-client', 'python']]);
    assert.ok(Array.isArray(seen.other_objective), `refused: ${seen.other_objective}`);
    assert.equal(seen.other_objective[0], 'FAILED_PRECONDITION');
    assert.match(seen.other_objective[1] ?? '', /^objective: REWARD_MODEL .*reward-model/);
    assert.deepEqual(seen.final, ['finished', 'JOB_STATE_SUCCEEDED', `file://${output}`]);
    assert.ok((await stat(join(output, 'config.json'))).isFile(), 'the model was written');
  } finally {
    await service?.stop();
  }
});

test('Go: the generated code passes go vet and go build against grpc and protobuf', async () => {
  const mod = join(dir, 'gomod');
  await mkdir(join(mod, 'cmd', 'check'), { recursive: true });
  await cp(join(generated, 'go'), mod, { recursive: true });
  // The versions protoc-gen-go and protoc-gen-go-grpc (scripts/codegen-tools.mjs) generate for.
  await writeFile(
    join(mod, 'go.mod'),
    'module rlhf.example/rlhfclient\n\ngo 1.24\n\nrequire (\n\tgoogle.golang.org/grpc v1.85.0\n\tgoogle.golang.org/protobuf v1.36.12\n)\n',
  );
  await writeFile(
    join(mod, 'cmd', 'check', 'main.go'),
    `package main

import (
	"google.golang.org/grpc"
	rlhfv1 "rlhf.example/rlhfclient/rlhf/v1"
)

func main() {
	var conn grpc.ClientConnInterface
	_ = rlhfv1.NewTrainingJobsServiceClient(conn)
	_ = rlhfv1.NewRewardModelServiceClient(conn)
	_ = rlhfv1.NewPreferenceModelServiceClient(conn)
	_ = rlhfv1.NewPolicyGeneratorServiceClient(conn)
	_ = &rlhfv1.StartTrainingJobRequest{Objective: rlhfv1.TrainingObjective_TRAINING_OBJECTIVE_DPO}
}
`,
  );
  // -mod=mod lets go write go.sum from the module proxy (cached after the first run); local: no toolchain
  // download.
  const env = { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' };
  await run('go', ['vet', './...'], { cwd: mod, env });
  await run('go', ['build', './...'], { cwd: mod, env });
});

/**
 * The paper's loop by hand, as a user types it: `rlhf generate` -> `rlhf judge` (a reward model, or a
 * preference model) -> `rlhf data pairs` -> `rlhf train dpo` -> `rlhf eval`; and bad input answered with one
 * line naming the flag or the file, line and field.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CliResult, runCli } from '../helpers/cli.js';

function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, r.stderr);
  return r;
}

function userError(r: CliResult, ...patterns: RegExp[]): void {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  for (const p of patterns) assert.match(r.stderr, p);
}

const readJsonl = async <T>(path: string): Promise<T[]> =>
  (await readFile(path, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as T);

interface Judged {
  prompt: string;
  responses: string[];
  response_ids: number[][];
  logprobs: number[][];
  rewards: number[];
}

describe('rlhf judge, rlhf data pairs and rlhf eval', () => {
  let dir = '';
  const p = (name: string): string => join(dir, name);
  const n = 4;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rlhf-judge-'));
    ok(await runCli(['data', 'synth', 'sentiment', '--out', p('data'), '--sft', '200']));
    const base = {
      hidden_size: 32,
      intermediate_size: 64,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      num_hidden_layers: 1,
      max_position_embeddings: 128,
    };
    await writeFile(p('policy.json'), JSON.stringify(base));
    // Six different prompts, so a pair finds its record by prompt.
    const prompts = ['the film', 'the plot was', 'i really', 'it was a', 'the acting', 'the music'];
    await writeFile(p('prompts.jsonl'), prompts.map((prompt) => `${JSON.stringify({ prompt })}\n`).join(''));
    await writeFile(
      p('rm.json'),
      JSON.stringify({ ...base, architectures: ['LlamaForSequenceClassification'], num_labels: 1 }),
    );
    const init = (config: string, out: string, tokenizer: string[]) =>
      runCli(['model', 'init', '--config', p(config), '--out', p(out), ...tokenizer, '--seed', '3']);
    ok(
      await init('policy.json', 'policy', [
        '--tokenizer-corpus',
        p('data/corpus.txt'),
        '--vocab-size',
        '300',
      ]),
    );
    ok(await init('rm.json', 'rm', ['--tokenizer', p('policy/tokenizer.json')]));
    ok(
      await runCli([
        'generate',
        '--model',
        p('policy'),
        '--prompts',
        p('prompts.jsonl'),
        '-n',
        String(n),
        '--max-new-tokens',
        '10',
        '--out',
        p('gen.jsonl'),
      ]),
    );
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('a reward model adds one reward per response, minus the length penalty per character, keeping the rest', async () => {
    const judge = (penalty: string, out: string) =>
      runCli([
        'judge',
        '--model',
        p('rm'),
        '--data',
        p('gen.jsonl'),
        '--out',
        p(out),
        '--length-penalty',
        penalty,
      ]);
    const r = ok(await judge('0', 'raw.jsonl'));
    assert.match(r.stderr, /judged 6 prompts with .*rm \(reward model, length penalty 0\)/);
    ok(await judge('0.05', 'judged.jsonl'));
    const [gen, raw, judged] = await Promise.all([
      readJsonl<Omit<Judged, 'rewards'>>(p('gen.jsonl')),
      readJsonl<Judged>(p('raw.jsonl')),
      readJsonl<Judged>(p('judged.jsonl')),
    ]);
    assert.equal(judged.length, 6);
    judged.forEach((row, i) => {
      const { rewards, ...rest } = row;
      assert.deepEqual(rest, gen[i], 'every field of the generation is kept');
      assert.equal(rewards.length, n);
      const plain = (raw[i] as Judged).rewards;
      assert.equal(new Set(plain).size, n, 'the model tells the responses apart');
      rewards.forEach((reward, k) => {
        const chars = [...(row.responses[k] as string)].length;
        assert.ok(
          Math.abs(reward - ((plain[k] as number) - 0.05 * chars)) < 1e-9,
          `record ${i} response ${k}`,
        );
      });
    });
  });

  it('pairs take the best and the worst response with their sampled token ids, or their text; DPO trains on them', async () => {
    const r = ok(await runCli(['data', 'pairs', '--data', p('judged.jsonl'), '--out', p('pairs.jsonl')]));
    const judged = await readJsonl<Judged>(p('judged.jsonl'));
    const pairs = await readJsonl<{
      prompt: string;
      chosen_ids: number[];
      rejected_ids: number[];
      margin: number;
    }>(p('pairs.jsonl'));
    assert.match(r.stderr, new RegExp(`wrote ${pairs.length} pairs from 6 records`));
    assert.ok(pairs.length >= 5, 'at most a tie or identical responses are dropped');
    for (const pair of pairs) {
      const row = judged.find((j) => j.prompt === pair.prompt) as Judged;
      const best = row.rewards.indexOf(Math.max(...row.rewards));
      const worst = row.rewards.indexOf(Math.min(...row.rewards));
      assert.deepEqual(pair.chosen_ids, row.response_ids[best]);
      assert.deepEqual(pair.rejected_ids, row.response_ids[worst]);
      assert.ok(
        Math.abs(pair.margin - ((row.rewards[best] as number) - (row.rewards[worst] as number))) < 1e-12,
      );
    }
    ok(await runCli(['data', 'pairs', '--data', p('judged.jsonl'), '--out', p('text.jsonl'), '--text']));
    const text = await readJsonl<{ prompt: string; chosen: string; rejected: string }>(p('text.jsonl'));
    const first = judged.find((j) => j.prompt === text[0]?.prompt) as Judged;
    assert.equal(text[0]?.chosen, first.responses[first.rewards.indexOf(Math.max(...first.rewards))]);
    const random = (seed: string, out: string) =>
      runCli([
        'data',
        'pairs',
        '--data',
        p('judged.jsonl'),
        '--out',
        p(out),
        '--strategy',
        'random',
        '--seed',
        seed,
      ]);
    ok(await random('7', 'random-a.jsonl'));
    ok(await random('7', 'random-b.jsonl'));
    assert.equal(await readFile(p('random-a.jsonl'), 'utf8'), await readFile(p('random-b.jsonl'), 'utf8'));

    const train = ok(
      await runCli([
        'train',
        'dpo',
        '--model',
        p('policy'),
        '--data',
        p('pairs.jsonl'),
        '--out',
        p('dpo'),
        '--steps',
        '2',
        '--batch-size',
        '4',
        '--lr',
        '0.02',
      ]),
    );
    assert.match(train.stderr, new RegExp(`train dpo: 2 steps over ${pairs.length} examples`));
  });

  it('eval compares the trained policy with the baseline: judge reward and win rate, KL, gold', async () => {
    interface Metrics {
      proxyReward: number;
      goldReward: number | null;
      winRate: number | null;
      kl: number;
      meanLength: number;
      samples: number;
    }
    type Result = { policy: Metrics; baseline: Metrics; judgeWinRate: number | null };
    const evaluate = (policy: string, ...extra: string[]) =>
      runCli([
        'eval',
        '--policy',
        p(policy),
        '--baseline',
        p('policy'),
        '--prompts',
        p('prompts.jsonl'),
        ...extra,
      ]);
    const r = ok(
      await evaluate('dpo', '--judge', p('rm'), '--gold', 'sentiment', '-n', '2', '--out', p('eval')),
    );
    const result = JSON.parse(r.stdout) as Result;
    assert.deepEqual(JSON.parse(await readFile(p('eval/metrics.json'), 'utf8')), result);
    assert.equal(result.policy.samples, 12);
    assert.equal((await readJsonl(p('eval/policy.jsonl'))).length, 12);
    assert.equal(result.baseline.kl, 0, 'the baseline against itself');
    assert.equal(result.baseline.winRate, 0.5);
    assert.notEqual(result.policy.kl, 0, 'DPO moved the policy');
    assert.ok(result.judgeWinRate !== null && result.judgeWinRate >= 0 && result.judgeWinRate <= 1);
    assert.equal(typeof result.policy.goldReward, 'number');
    assert.match(r.stderr, /policy: judge reward -?\d/);
    // The same model on both sides: the same samples, so every figure ties.
    const same = JSON.parse(ok(await evaluate('policy', '--judge', p('rm'))).stdout) as Result;
    assert.equal(same.judgeWinRate, 0.5);
    assert.deepEqual(same.policy, same.baseline);
    assert.equal(same.policy.goldReward, null, 'no gold without --gold');
  });

  it('a reward model with a chat template reads chat records through its own template', async () => {
    const rmChat = p('rm-chat');
    await cp(p('rm'), rmChat, { recursive: true });
    const config = join(rmChat, 'tokenizer_config.json');
    const template =
      '{% for m in messages %}<<{{ m.role }}>> {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<<assistant>>{% endif %}';
    await writeFile(
      config,
      JSON.stringify({ ...JSON.parse(await readFile(config, 'utf8')), chat_template: template }),
    );
    const chats = ['the film', 'the plot'].map((c) =>
      JSON.stringify({ messages: [{ role: 'user', content: c }] }),
    );
    await writeFile(p('chat-prompts.jsonl'), `${chats.join('\n')}\n`);
    ok(
      await runCli([
        'generate',
        '--model',
        p('policy'),
        '--prompts',
        p('chat-prompts.jsonl'),
        '-n',
        '3',
        '--max-new-tokens',
        '6',
        '--out',
        p('chat-gen.jsonl'),
      ]),
    );
    // The same records with the reward model's rendering as their prompt and no messages: the same rewards.
    const gen = await readJsonl<Record<string, unknown> & { prompt: string }>(p('chat-gen.jsonl'));
    assert.equal(gen[0]?.prompt, 'the film', 'the policy has no template: its prompt is the contents');
    const rendered = gen.map(({ messages: _m, ...r }) => ({
      ...r,
      prompt: `<<user>> ${r.prompt}\n<<assistant>>`,
    }));
    await writeFile(p('chat-rendered.jsonl'), `${rendered.map((r) => JSON.stringify(r)).join('\n')}\n`);
    const judge = async (model: string, data: string) => {
      ok(await runCli(['judge', '--model', p(model), '--data', p(data), '--out', p(`${model}-${data}`)]));
      return (await readJsonl<Judged>(p(`${model}-${data}`))).map((r) => r.rewards);
    };
    const own = await judge('rm-chat', 'chat-gen.jsonl');
    assert.deepEqual(own, await judge('rm-chat', 'chat-rendered.jsonl'));
    assert.notDeepEqual(own, await judge('rm', 'chat-gen.jsonl'), 'not the policy-rendered prompt');
  });

  it("a preference model ranks each prompt's responses: rewards n - 1 - rank", async () => {
    for (const method of ['tournament', 'round-robin']) {
      const out = p(`pm-${method}.jsonl`);
      const r = ok(
        await runCli([
          'judge',
          '--model',
          p('policy'),
          '--data',
          p('gen.jsonl'),
          '--out',
          out,
          '--rank',
          method,
        ]),
      );
      assert.match(r.stderr, new RegExp(`preference model, ${method}`));
      for (const row of await readJsonl<Judged>(out))
        assert.deepEqual([...row.rewards].sort(), [0, 1, 2, 3], `a ranking of the ${n} responses`);
    }
  });

  it('bad input is one line naming the flag, or the file, line and field, and writes nothing', async () => {
    const judge = (...args: string[]) => runCli(['judge', '--out', p('never.jsonl'), ...args]);
    userError(await judge('--model', p('nope'), '--data', p('gen.jsonl')), /--model: .*nope does not exist/);
    userError(
      await judge('--model', p('rm'), '--data', p('nope.jsonl')),
      /--data: .*nope\.jsonl does not exist/,
    );
    userError(
      await judge('--model', p('rm'), '--data', p('gen.jsonl'), '--length-penalty', '-1'),
      /--length-penalty/,
    );
    userError(
      await judge('--model', p('policy'), '--data', p('gen.jsonl'), '--length-penalty', '0.1'),
      /--length-penalty: .* is a preference model/,
    );
    userError(
      await judge('--model', p('rm'), '--data', p('gen.jsonl'), '--rank', 'best'),
      /--rank: unknown method/,
    );
    userError(
      await judge('--model', p('rm'), '--data', p('data/prompts.jsonl')),
      /prompts\.jsonl:1:responses: expected a non-empty array of strings/,
    );
    const evaluate = (...args: string[]) =>
      runCli([
        'eval',
        '--baseline',
        p('policy'),
        '--prompts',
        p('prompts.jsonl'),
        '--out',
        p('never'),
        ...args,
      ]);
    userError(await evaluate('--policy', p('nope')), /--policy: .*nope does not exist/);
    userError(await evaluate('--policy', p('policy'), '--gold', 'nope'), /--gold: unknown task "nope"/);
    const wrongJudge = await evaluate('--policy', p('policy'), '--judge', p('policy'));
    assert.equal(wrongJudge.code, 1, 'FAILED_PRECONDITION, as for a wrong model anywhere');
    assert.match(wrongJudge.stderr, /^error: --judge: .* is a causal LM; this call needs a reward model/);
    assert.equal(existsSync(p('never')), false);
    const pairs = (data: string, ...args: string[]) =>
      runCli(['data', 'pairs', '--data', p(data), '--out', p('never.jsonl'), ...args]);
    userError(await pairs('gen.jsonl'), /gen\.jsonl:1:rewards: is missing/, /rlhf judge/);
    await writeFile(p('short.jsonl'), '{"prompt": "a", "responses": ["x", "y"], "rewards": [1]}\n');
    userError(await pairs('short.jsonl'), /short\.jsonl:1:rewards: has 1 entries for 2 responses/);
    userError(await pairs('judged.jsonl', '--strategy', 'best'), /--strategy: unknown strategy "best"/);
    assert.equal(existsSync(p('never.jsonl')), false);
  });
});

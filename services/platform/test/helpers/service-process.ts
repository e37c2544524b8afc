/**
 * A service's `main.ts` started as its own process, as it is deployed (benchmarks, fault tests): resolves
 * once the process prints the banner `startService` writes, with the ports it names.
 */
import { type ChildProcess, spawn } from 'node:child_process';

export interface ServiceProcess {
  child: ChildProcess;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  grpcPort: number;
  /** null when started with `metrics: false`. */
  metricsPort: number | null;
  /** The OpenAI-compatible API's port; null unless `args` turned it on. */
  openaiPort: number | null;
}

export interface ServiceProcessOptions {
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Serve the probe and metrics endpoint on a free port (default true). */
  metrics?: boolean;
  /** Log level of the child (default warn). */
  logLevel?: string;
  /** `--artifact-root` for each: the directories its file:// URIs may name (default none). */
  artifactRoots?: string[];
  /** Arguments right after the script, before the flags (e.g. `serve policy-generator` for bin/rlhf.mjs). */
  command?: string[];
  /** More flags, after the ones above (e.g. `--openai-port 0`). */
  args?: string[];
}

interface BannerPorts {
  grpcPort: number;
  metricsPort: number | null;
  openaiPort: number | null;
}

/**
 * The ports of `<name> listening on <host>:<port>[ (metrics on :<port>)][ (openai on :<port>)]`, or null for
 * any other line.
 */
export function parseListeningBanner(line: string): BannerPorts | null {
  const m = /listening on [^\s]+:(\d+)(?: \(metrics on :(\d+)\))?(?: \(openai on :(\d+)\))?/.exec(line);
  if (!m) return null;
  const port = (s: string | undefined) => (s === undefined ? null : Number(s));
  return { grpcPort: Number(m[1]), metricsPort: port(m[2]), openaiPort: port(m[3]) };
}

/** Runs `node --import tsx <mainPath>` on 127.0.0.1, a free gRPC port, until it prints its banner. */
export async function startServiceProcess(
  mainPath: string,
  o: ServiceProcessOptions = {},
): Promise<ServiceProcess> {
  const args = ['--import', 'tsx', mainPath, ...(o.command ?? []), '--host', '127.0.0.1', '--port', '0'];
  args.push('--metrics-port', o.metrics === false ? 'off' : '0', '--log-level', o.logLevel ?? 'warn');
  for (const root of o.artifactRoots ?? []) args.push('--artifact-root', root);
  args.push(...(o.args ?? []));
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ports = await new Promise<BannerPorts>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => parseListeningBanner(l) !== null);
      if (line !== undefined) resolve(parseListeningBanner(line) as BannerPorts);
    });
    void exited.then((code) => reject(new Error(`${mainPath} exited with ${code} before listening`)));
  });
  return { child, exited, ...ports };
}

/** Sum and count of a Prometheus histogram on a metrics endpoint (0 and 0 when it has no samples yet). */
export async function histogramTotals(
  metricsPort: number,
  name: string,
): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const value = (series: string): number =>
    Number(new RegExp(`^${series}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { sum: value(`${name}_sum`), count: value(`${name}_count`) };
}

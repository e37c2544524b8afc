/**
 * A cached model's session, released only once nothing uses it. The model cache retires a session when it
 * evicts its model or loads a new version of it, while calls may still be running on it: a decode loop
 * between two steps, a tournament between two comparisons. Runs in flight count as uses, and work that spans
 * several runs holds the session for its whole length; a retired session is released when the last use
 * ends, so those calls finish on the model they started with. A run on a released session is UNAVAILABLE.
 */
import type { ModelRunner, OutputTensor, TensorValue } from '@rlhf/ml-engine';
import { RlhfError } from '@rlhf/platform';

export class SharedSession implements ModelRunner {
  private uses = 0;
  private retired = false;
  private released: Promise<void> | undefined;
  private onReleased: Array<() => void> = [];

  /** `companions` (such as the model's row loop) are released with it. */
  constructor(
    private readonly inner: ModelRunner,
    private readonly companions: ReadonlyArray<{ dispose(): Promise<void> }> = [],
  ) {}

  get inputNames(): readonly string[] {
    return this.inner.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.inner.outputNames;
  }

  /** True once the cache has let go of it (it may still be finishing calls). */
  get isRetired(): boolean {
    return this.retired;
  }

  async run(
    feeds: Readonly<Record<string, TensorValue>>,
    outputs?: readonly string[],
  ): Promise<Record<string, OutputTensor>> {
    const release = this.hold();
    try {
      return await this.inner.run(feeds, outputs);
    } finally {
      release();
    }
  }

  /** Keeps the session loaded until the returned function is called (once; later calls do nothing). */
  hold(): () => void {
    if (this.released)
      throw new RlhfError(
        'UNAVAILABLE',
        'the model was unloaded from this server while the call was starting',
        {
          fix: 'retry the call; the model is loaded again',
        },
      );
    this.uses++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.uses--;
      this.releaseIfUnused();
    };
  }

  /** Retires the session: it is released now if unused, else when its last use ends. Resolves then. */
  dispose(): Promise<void> {
    this.retired = true;
    this.releaseIfUnused();
    if (this.released) return this.released;
    return new Promise((resolve) => this.onReleased.push(resolve));
  }

  private releaseIfUnused(): void {
    if (!this.retired || this.uses > 0 || this.released) return;
    this.released = Promise.all([this.inner.dispose(), ...this.companions.map((c) => c.dispose())]).then(
      () => undefined,
    );
    const waiting = this.onReleased.splice(0);
    void this.released.then(
      () => {
        for (const wake of waiting) wake();
      },
      () => {
        for (const wake of waiting) wake();
      },
    );
  }
}

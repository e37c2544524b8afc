/**
 * A max-heap of candidate merges for the BPE trainer. Entries go stale when a pair's count changes; the
 * trainer pushes a fresh entry instead of updating in place and skips stale ones when it pops (lazy
 * deletion), which keeps each merge step proportional to the words it touches rather than to all pairs.
 */
export interface PairEntry {
  count: number;
  left: number;
  right: number;
}

/**
 * Order of preference: the higher count, then the smaller (left, right) id pair. HF's BpeTrainer breaks
 * ties the same way, so both pick the same merges from the same counts.
 */
function before(a: PairEntry, b: PairEntry): boolean {
  if (a.count !== b.count) return a.count > b.count;
  if (a.left !== b.left) return a.left < b.left;
  return a.right < b.right;
}

export class PairHeap {
  private readonly items: PairEntry[] = [];

  get size(): number {
    return this.items.length;
  }

  push(entry: PairEntry): void {
    const items = this.items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): PairEntry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < items.length && before(items[l]!, items[best]!)) best = l;
      if (r < items.length && before(items[r]!, items[best]!)) best = r;
      if (best === i) break;
      [items[i], items[best]] = [items[best]!, items[i]!];
      i = best;
    }
    return top;
  }
}

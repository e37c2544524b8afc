/**
 * Cycles of a directed graph, one per strongly connected component (Tarjan), each written as the path that
 * closes it: [a, b, c] means a -> b -> c -> a. One cycle per component is enough to name the files to fix;
 * a component with several loops shows again after the first is broken.
 */
export type Graph = ReadonlyMap<string, Iterable<string>>;

function components(graph: Graph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  // Iterative, so a long import chain cannot overflow the call stack.
  for (const start of [...graph.keys()].sort()) {
    if (index.has(start)) continue;
    const work: { node: string; succ: Iterator<string> }[] = [];
    const enter = (node: string) => {
      index.set(node, next);
      low.set(node, next);
      next += 1;
      stack.push(node);
      onStack.add(node);
      work.push({ node, succ: [...(graph.get(node) ?? [])].sort()[Symbol.iterator]() });
    };
    enter(start);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const step = top.succ.next();
      if (!step.done) {
        const to = step.value;
        if (!index.has(to)) enter(to);
        else if (onStack.has(to)) low.set(top.node, Math.min(low.get(top.node)!, index.get(to)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(top.node)!));
      if (low.get(top.node) === index.get(top.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== top.node);
        out.push(component);
      }
    }
  }
  return out;
}

/** The shortest path from `from` back to itself inside `members` (breadth-first). */
function loopThrough(graph: Graph, from: string, members: ReadonlySet<string>): string[] {
  const previous = new Map<string, string>();
  let frontier = [from];
  while (frontier.length > 0) {
    const nextFrontier: string[] = [];
    for (const node of frontier) {
      for (const to of [...(graph.get(node) ?? [])].sort()) {
        if (!members.has(to)) continue;
        if (to === from) {
          const path = [node];
          while (path[0] !== from) path.unshift(previous.get(path[0]!)!);
          return path;
        }
        if (previous.has(to)) continue;
        previous.set(to, node);
        nextFrontier.push(to);
      }
    }
    frontier = nextFrontier;
  }
  return [from];
}

/** One cycle per strongly connected component with a loop (including a node that reaches itself). */
export function findCycles(graph: Graph): string[][] {
  const cycles: string[][] = [];
  for (const component of components(graph)) {
    const members = new Set(component);
    const [first] = [...component].sort();
    const selfLoop = component.length === 1 && [...(graph.get(first!) ?? [])].includes(first!);
    if (component.length > 1 || selfLoop) cycles.push(loopThrough(graph, first!, members));
  }
  return cycles.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** `a -> b -> c -> a`, the form a failing test prints. */
export function formatCycle(cycle: readonly string[]): string {
  return [...cycle, cycle[0]].join(' -> ');
}

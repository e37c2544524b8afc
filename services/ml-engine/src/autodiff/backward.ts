/**
 * Reverse-mode differentiation of a graph being built: one walk over the forward nodes in reverse
 * topological order (the builder's node order is topological by construction), calling each node's rule
 * from `vjp-rules.ts` and appending the emitted nodes to the same builder. Gradients of a value used by
 * several nodes are summed in one Add/Sum when the value's producer is reached.
 */
import { formatShape, sameShape } from '../onnx/dims.js';
import type { GraphBuilder } from '../onnx/graph-builder.js';
import type { GraphNode, Value } from '../onnx/graph-types.js';
import { isFloat } from '../onnx/tensor-data.js';
import { type VjpContext, vjpRules } from './vjp-rules.js';

export interface BackwardOptions {
  /** Gradient of the loss itself (default: ones, which requires a one-element loss). */
  seed?: Value;
  /** Values treated as constants: no gradient flows through them (like torch's detach). */
  stopAt?: readonly Value[];
  /** What to return for a `wrt` value the loss does not depend on: an error (default) or zeros. */
  unused?: 'error' | 'zeros';
}

/**
 * Appends the backward pass of `loss` to `g` and returns d(loss)/d(w) for each `w` in `wrt`, in order.
 * Integer and boolean tensors (indices, masks) never carry gradients; the caller marks the returned
 * values as graph outputs.
 */
export function backward(
  g: GraphBuilder,
  loss: Value,
  wrt: readonly Value[],
  options: BackwardOptions = {},
): Value[] {
  if (!isFloat(loss.dtype))
    throw new Error(`the loss ${loss.name} must be a float tensor, not ${loss.dtype}`);
  for (const w of wrt)
    if (!isFloat(w.dtype)) throw new Error(`cannot differentiate with respect to ${w.dtype} ${w.name}`);
  const forward = [...g.nodes];
  const stop = new Set((options.stopAt ?? []).map((v) => v.name));

  // Values that depend on some w (forward pass) and nodes the loss depends on (backward pass).
  const active = new Set(wrt.map((w) => w.name));
  for (const node of forward) {
    if (!node.inputs.some((v) => v && active.has(v.name) && !stop.has(v.name))) continue;
    for (const o of node.outputs) if (isFloat(o.dtype)) active.add(o.name);
  }
  const onPath = new Set([loss.name]);
  const nodes: GraphNode[] = [];
  for (let i = forward.length - 1; i >= 0; i--) {
    const node = forward[i] as GraphNode;
    if (!node.outputs.some((o) => onPath.has(o.name) && active.has(o.name))) continue;
    nodes.push(node);
    for (const v of node.inputs) if (v && active.has(v.name) && !stop.has(v.name)) onPath.add(v.name);
  }

  return g.scope('grad', () => {
    const pending = new Map<string, Value[]>();
    const add = (v: Value, d: Value) => pending.set(v.name, [...(pending.get(v.name) ?? []), d]);
    // Summing on first use keeps one node per fan-out instead of a chain of pairwise Adds.
    const total = (v: Value): Value | null => {
      const parts = pending.get(v.name);
      if (!parts) return null;
      const sum = g.sum(parts);
      pending.set(v.name, [sum]);
      return sum;
    };
    add(loss, options.seed ?? ones(g, loss));

    for (const node of nodes) {
      const dys = node.outputs.map((o) => (active.has(o.name) ? total(o) : null));
      if (dys.every((d) => d === null)) continue;
      const rule = vjpRules[node.opType];
      if (rule === undefined || node.domain !== '') {
        throw new Error(`no gradient rule for op ${node.opType} (${node.name})`);
      }
      const y = node.outputs[0] as Value;
      let zeros: Value | undefined;
      const ctx: VjpContext = {
        g,
        node,
        x: node.inputs as unknown as VjpContext['x'],
        y,
        get dy() {
          zeros ??= dys[0] ?? g.zerosLike(y);
          return zeros;
        },
        dys,
      };
      const grads = rule(ctx);
      node.inputs.forEach((v, i) => {
        if (!v || !onPath.has(v.name) || stop.has(v.name)) return;
        const thunk = grads[i];
        if (thunk === undefined) return;
        const d = thunk();
        if (d.dtype !== v.dtype || !sameShape(d.shape, v.shape)) {
          throw new Error(
            `gradient rule for op ${node.opType} (${node.name}) gave ${d.dtype} ${formatShape(d.shape)} ` +
              `for input ${i} (${v.name}), which is ${v.dtype} ${formatShape(v.shape)}`,
          );
        }
        add(v, d);
      });
    }

    return wrt.map((w) => {
      const d = total(w);
      if (d) return d;
      if (options.unused === 'zeros') return g.zerosLike(w);
      throw new Error(`the loss ${loss.name} does not depend on ${w.name}; pass unused: 'zeros' to allow it`);
    });
  });
}

function ones(g: GraphBuilder, loss: Value): Value {
  if (!loss.shape.every((d) => d === 1)) {
    throw new Error(
      `the loss ${loss.name} has shape ${formatShape(loss.shape)}; reduce it to one element or pass a seed`,
    );
  }
  return g.constant([1], [...loss.shape] as number[], loss.dtype);
}

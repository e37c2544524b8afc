/**
 * Plain onnx.proto pieces for graphs the GraphBuilder does not make: graphs with a subgraph (an ONNX Loop
 * around a whole model graph), written node by node.
 */
import {
  type AttributeProto,
  AttributeType,
  DataType,
  type GraphProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './onnx-types.js';

/** Makes nodes with names unique within one graph: `<prefix>_<op>_<n>`. */
export function nodeMaker(
  prefix: string,
): (opType: string, input: string[], output: string[], attribute?: AttributeProto[]) => NodeProto {
  let counter = 0;
  return (opType, input, output, attribute = []) => ({
    name: `${prefix}_${opType}_${counter++}`,
    opType,
    domain: '',
    input,
    output,
    attribute,
  });
}

export const intAttribute = (name: string, i: number): AttributeProto => ({
  name,
  type: AttributeType.INT,
  i,
});

export const graphAttribute = (name: string, g: GraphProto): AttributeProto => ({
  name,
  type: AttributeType.GRAPH,
  g,
});

export const int64Tensor = (name: string, dims: number[], values: readonly number[]): TensorProto => ({
  name,
  dims,
  dataType: DataType.INT64,
  int64Data: values.map(BigInt),
});

/** A value's declared type: element type and dims (numbers are sizes, strings symbolic names). */
export const valueInfo = (
  name: string,
  elemType: number,
  shape: ReadonlyArray<number | string>,
): ValueInfoProto => ({
  name,
  type: { elemType, shape: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
});

/**
 * The subset of OpenAPI v3 (as Kubernetes structural schemas use it) that the RLHFRun schema is written in.
 * Being plain data, the same object drives validation here and becomes the CRD's openAPIV3Schema.
 */
export interface SchemaNode {
  type: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description: string;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  items?: SchemaNode;
  /** A map with values of this schema (nodeSelector, labels). */
  additionalProperties?: SchemaNode;
  enum?: (string | number)[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minLength?: number;
  pattern?: string;
  /**
   * Words accepted in place of a number (`lengthPenalty: auto`). Kubernetes has no number-or-string type
   * (int-or-string takes integers only), so the CRD writer must render such a field specially.
   */
  'x-rlhf-or-words'?: string[];
  /** Keep unknown fields (affinity and tolerations are Kubernetes types we pass through unchanged). */
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  /** CEL rules for what a schema alone cannot say. */
  'x-kubernetes-validations'?: Array<{ rule: string; message: string }>;
}

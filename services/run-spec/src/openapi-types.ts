/**
 * The two shapes a CRD schema is made of, as types only, so the CRD generator (crd.ts) and the validator
 * that checks resources against its output (crd-validate.ts) share them without importing each other.
 */

/** A CEL rule as CRDs carry it; fieldPath points the error at a field below the node (Kubernetes 1.28+). */
export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
}

export type OpenApiSchema = Record<string, unknown>;

/** Request checks that answer INVALID_ARGUMENT naming the field, in the proto's snake_case field names. */
import { invalidArgument, RlhfError } from '@rlhf/platform';

/**
 * A text field: present unless `allowEmpty`, and within `maxChars` (RESOURCE_EXHAUSTED). Invalid UTF-8 is
 * found in the request's raw bytes (utf8-fields.ts), not here: after decoding it is U+FFFD, which valid
 * text may hold too.
 */
export function checkText(
  value: string,
  field: string,
  options: { allowEmpty?: boolean; maxChars?: number } = {},
): string {
  if (!options.allowEmpty && value.length === 0) throw invalidArgument(field, 'must not be empty');
  if (options.maxChars !== undefined && value.length > options.maxChars) {
    throw new RlhfError(
      'RESOURCE_EXHAUSTED',
      `has ${value.length} characters, more than the limit ${options.maxChars}`,
      { field },
    );
  }
  return value;
}

export function checkModelUri(ref: { uri: string } | undefined, field = 'model'): string {
  if (!ref || ref.uri === '')
    throw invalidArgument(`${field}.uri`, 'is required', 'pass nats-obj://<bucket>/<key> or file:///path');
  return checkText(ref.uri, `${field}.uri`);
}

export function checkCount(value: number, field: string, min: number, max: number): number {
  if (!(Number.isInteger(value) && value >= min))
    throw invalidArgument(field, `must be an integer >= ${min}, got ${value}`);
  if (value > max)
    throw new RlhfError('RESOURCE_EXHAUSTED', `${value} is above the server's limit ${max}`, { field });
  return value;
}

export function checkListLength(length: number, field: string, min: number, max: number): void {
  if (length < min)
    throw invalidArgument(field, min === 1 ? 'must not be empty' : `needs at least ${min} entries`);
  if (length > max)
    throw new RlhfError('RESOURCE_EXHAUSTED', `has ${length} entries, more than the server's limit ${max}`, {
      field,
    });
}

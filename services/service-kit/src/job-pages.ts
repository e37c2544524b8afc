/**
 * Pages of ListTrainingJobs: the page size a request gets (a default, a server maximum) and the page
 * token. The token is opaque to clients; inside it is the acceptance number of the last job a page held
 * and the filters it was listed with, so the next page resumes after that job even when jobs were added or
 * forgotten in between, and a token reused with other filters is refused rather than silently misread.
 */
import { invalidArgument } from '@rlhf/platform';
import type { JobState, TrainingObjective } from '@rlhf/proto';

/** Jobs on a page when the request leaves page_size at 0. */
export const defaultJobPageSize = 50;
/** Most jobs on a page; a larger page_size is served as this. */
export const maxJobPageSize = 100;

export interface JobFilter {
  objective: TrainingObjective;
  state: JobState;
}

/** The page size for a request's page_size: 0 the default, larger than the maximum the maximum. */
export function jobPageSize(pageSize: number): number {
  if (!Number.isInteger(pageSize) || pageSize < 0)
    throw invalidArgument('page_size', `must be >= 0, got ${pageSize}`, 'pass 0 for the default page');
  if (pageSize === 0) return defaultJobPageSize;
  return Math.min(pageSize, maxJobPageSize);
}

const tokenVersion = 'j1';

export function encodeJobPageToken(afterSeq: number, filter: JobFilter): string {
  return Buffer.from(`${tokenVersion}.${afterSeq}.${filter.objective}.${filter.state}`).toString('base64url');
}

/** The job to resume after; 0 for an empty token (the first page). */
export function decodeJobPageToken(token: string, filter: JobFilter): number {
  if (token === '') return 0;
  const fix = 'pass the next_page_token of the previous page unchanged, or leave it empty for the first page';
  const parts = Buffer.from(token, 'base64url').toString('utf8').split('.');
  const [version, seq, objective, state] = parts;
  const after = Number(seq);
  if (parts.length !== 4 || version !== tokenVersion || !Number.isSafeInteger(after) || after < 0)
    throw invalidArgument('page_token', 'is not a token this server issued', fix);
  if (Number(objective) !== filter.objective || Number(state) !== filter.state)
    throw invalidArgument(
      'page_token',
      'was issued for other filters (objective, state)',
      'list the next page with the filters of the previous one',
    );
  return after;
}

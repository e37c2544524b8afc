/** The controller's generic runtime: work queue, supervised informer, leader election. */
export * from './informer.js';
export * from './leader-election.js';
export * from './logger.js';
export * from './work-queue.js';

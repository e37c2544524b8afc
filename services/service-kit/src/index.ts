export * from './grpc-handlers.js';
export * from './judge-records.js';
export * from './micro-batcher.js';
export * from './model-artifacts.js';
export * from './model-cache.js';
export * from './model-ref.js';
export * from './stage-worker.js';
export * from './validate.js';

export * from './grpc-handlers.js';
export * from './model-artifacts.js';
export * from './model-cache.js';
export * from './stage-worker.js';
export * from './validate.js';

export * from './nats.js';
export * from './service-process.js';

export * from './nats.js';
export * from './s3-server.js';
export * from './service-process.js';

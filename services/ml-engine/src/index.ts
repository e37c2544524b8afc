export * from './random/rng.js';

#!/usr/bin/env node
// The `rlhf` command. The project runs its TypeScript sources through tsx's loader, so there is no build
// step between editing a file and running it.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');

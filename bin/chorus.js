#!/usr/bin/env node
// Node 24 runs the TypeScript sources directly (type stripping); no build step.
import '../cli/main.ts';

#!/usr/bin/env node
// The biostore executable: runs the compiled program and sets the exit code.
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv);

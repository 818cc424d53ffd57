#!/usr/bin/env node
// The biostore executable: runs the compiled program and sets the exit code.
// biostore targets Node 20; the SDK's notice about its future Node 22 floor is
// noise for operators (the lockfile pins a release that supports Node 20).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { main } = await import('../dist/cli/main.js');

process.exitCode = await main(process.argv);

import { defineConfig } from 'vitest/config';

// Integration tests share two real Kafka clusters (started by test/support/global-setup.ts) and run
// one file at a time; unit tests need no network.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // the JSON report lets .ci/run print a plain 'N passed, N failed' line
    reporters: ['default', ['json', { outputFile: '.cache/test-results.json' }]],
  },
});

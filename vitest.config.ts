import { defineConfig } from 'vitest/config';

// Integration tests share two real Kafka clusters (started by test/global-setup.ts) and run
// one file at a time; unit tests need no network.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default'],
  },
});

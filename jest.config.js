// Jest runs the TypeScript sources as ES modules (NestJS 12 is ESM-only): @swc/jest compiles
// them with legacy decorators and decorator metadata, as tsc does for the build.
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
      target: 'es2022',
      keepClassNames: true,
    },
    module: { type: 'es6' },
    sourceMaps: 'inline',
  },
];

const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: {
    '^nestjs-warren$': '<rootDir>/libs/warren/src/index.ts',
    '^nestjs-warren/testing$': '<rootDir>/libs/warren/src/testing/index.ts',
    '^nestjs-warren/memory$': '<rootDir>/libs/warren/src/memory/index.ts',
    '^nestjs-warren/microservices$': '<rootDir>/libs/warren/src/microservices/index.ts',
    '^nestjs-warren/asyncapi$': '<rootDir>/libs/warren/src/asyncapi/index.ts',
    '^nestjs-warren/outbox$': '<rootDir>/libs/warren/src/outbox/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  // Holds each test's log lines, printed only if it fails (a passing run prints jest's summary).
  testEnvironment: '<rootDir>/test/support/log-capturing-environment.ts',
  setupFilesAfterEnv: ['<rootDir>/test/support/capture-nest-logs.ts'],
};

export default {
  // The global setup is compiled with the root's transform, so the root carries it too.
  ...common,
  // jest-circus reads the timeout from the root config only, not from a project's.
  testTimeout: 60_000,
  // One broker for the whole run, started before any suite (or taken from RABBITMQ_URL).
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/src/**/*.spec.ts', '<rootDir>/bench/src/**/*.spec.ts'],
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      // The compat apps' own tests run inside those apps, with the packed package (test/compat.e2e-spec.ts).
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/compat/'],
    },
  ],
};

// As `nest new` (NestJS 11) sets jest up: ts-jest, here transpiling each file on its own as
// `isolatedModules` promises (the types are checked by `npm run typecheck`).
module.exports = {
  testEnvironment: 'node',
  rootDir: '.',
  testRegex: '.*\\.e2e-spec\\.ts$',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 30000,
};

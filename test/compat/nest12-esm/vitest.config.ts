// As NestJS 12's template sets vitest up: SWC compiles the TypeScript, since Nest's decorators
// need the decorator metadata that vitest's default transform does not emit.
import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: { include: ['test/**/*.e2e-spec.ts'], testTimeout: 30_000, hookTimeout: 30_000 },
});

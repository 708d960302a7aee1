// Types only, never run: every entry point the app can use without optional peers must resolve
// under each of its tsconfigs. Under `moduleResolution: node`, which ignores `exports`, the
// subpaths resolve only through the package's `typesVersions` (TS2307 without it); `testing` and
// `memory` are imported by the tests.
import type { WarrenAsyncApi } from 'nestjs-warren/asyncapi';
import type { OutboxModule } from 'nestjs-warren/outbox';

export type EntryPoints = [typeof WarrenAsyncApi, typeof OutboxModule];

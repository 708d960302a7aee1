import { freshDatabase as freshDatabaseOn, type FreshDatabase } from 'nestjs-warren/testing';

/** The PostgreSQL the global setup provided; a missing one is a failure, not a skip. */
export function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: the jest global setup did not provide a PostgreSQL');
  return url;
}

export type TestDatabase = FreshDatabase;

/** A database of its own for one suite on the shared server, so suites never see each other's rows. */
export function freshDatabase(): Promise<TestDatabase> {
  return freshDatabaseOn({ serverUrl: databaseUrl() });
}

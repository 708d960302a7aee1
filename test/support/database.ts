import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The PostgreSQL the global setup provided; a missing one is a failure, not a skip. */
export function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: the jest global setup did not provide a PostgreSQL');
  return url;
}

export interface TestDatabase {
  url: string;
  /** Drops the database, ending whatever sessions are still on it. */
  drop(): Promise<void>;
}

/** A database of its own for one suite on the shared server, so suites never see each other's rows. */
export async function freshDatabase(): Promise<TestDatabase> {
  const name = `warren_${randomBytes(5).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: databaseUrl() });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(databaseUrl());
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

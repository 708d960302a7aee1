import { randomBytes } from 'node:crypto';

export interface FreshDatabase {
  /** `postgres://` URL of the new database, on the server it was created on. */
  url: string;
  /** Its name. */
  name: string;
  /** Drops the database, ending whatever sessions are still on it. */
  drop(): Promise<void>;
}

export interface FreshDatabaseOptions {
  /** The server, as the URL of any database on it. Default `DATABASE_URL`. */
  serverUrl?: string;
  /** How the database's name starts (letters, digits, `_`). Default `warren`. */
  prefix?: string;
}

/**
 * A database of its own on a PostgreSQL server (the one `startPostgres()` gives, or any other),
 * so that suites or benchmark trials sharing the server never see each other's rows. It uses the
 * `pg` package the outbox's PostgreSQL store needs too.
 */
export async function freshDatabase(options: FreshDatabaseOptions = {}): Promise<FreshDatabase> {
  const serverUrl = options.serverUrl ?? process.env.DATABASE_URL;
  if (!serverUrl) throw new Error('freshDatabase(): no server: pass serverUrl or set DATABASE_URL');
  const prefix = options.prefix ?? 'warren';
  if (!/^[a-z_][a-z0-9_]*$/i.test(prefix)) {
    throw new Error(`freshDatabase(): the prefix "${prefix}" is not a plain SQL name (letters, digits, _)`);
  }
  const pg = await import('pg').catch((err: Error) => {
    throw new Error('freshDatabase() needs the `pg` package: npm install pg', { cause: err });
  });
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.default.Client({ connectionString: serverUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), name, drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

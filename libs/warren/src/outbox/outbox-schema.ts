import { OUTBOX_DEFAULTS } from '../warren.defaults.js';
import { OutboxError } from './outbox-errors.js';

/** Where the outbox's tables live, and the names derived from it. */
export interface OutboxTables {
  schema: string;
  /** `"public".warren_outbox` */
  outbox: string;
  /** `"public".warren_inbox` */
  inbox: string;
  /** The NOTIFY channel the insert trigger signals on. */
  channel: string;
  /** Key of the advisory lock an ordered relay holds while it publishes. */
  lockKey: string;
}

export function outboxTables(schema: string = OUTBOX_DEFAULTS.schema): OutboxTables {
  // Interpolated into SQL (identifiers cannot be parameters): only plain names.
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new OutboxError(`outbox schema must be a lower-case SQL name ([a-z_][a-z0-9_]*), got "${schema}"`);
  }
  return {
    schema,
    outbox: `"${schema}".warren_outbox`,
    inbox: `"${schema}".warren_inbox`,
    channel: `${schema}.warren_outbox`,
    lockKey: `warren_outbox_relay:${schema}`,
  };
}

/**
 * The outbox's migration as SQL, for teams that run their own migrations (`OutboxModule.forRoot({
 * migrate: true })` runs it at boot instead). Idempotent: every statement is `IF NOT EXISTS` or
 * `OR REPLACE`, so running it again, or from several instances at once (it takes an advisory
 * lock), changes nothing. Run as a script on a database in use, its `CREATE INDEX IF NOT EXISTS`
 * and the trigger's re-creation still take table locks (SHARE, ACCESS EXCLUSIVE) that wait for
 * the writers and relays in flight and can deadlock with them: run it in a deploy step, or let
 * `Outbox.migrate()` do it, which first checks the catalogue and runs nothing when all is there.
 */
export function outboxMigrationSql(schema: string = OUTBOX_DEFAULTS.schema): string {
  const t = outboxTables(schema);
  return `-- nestjs-warren outbox and inbox, schema ${schema}
SELECT pg_advisory_xact_lock(hashtext('warren_outbox_migration:${schema}'));
CREATE SCHEMA IF NOT EXISTS "${schema}";
-- One row per message written by outbox.publish()/sendToQueue(), in the writer's transaction.
-- seq orders the relay's publishes; id is the message id every copy carries.
CREATE TABLE IF NOT EXISTS ${t.outbox} (
  seq bigserial PRIMARY KEY,
  id uuid NOT NULL UNIQUE,
  exchange text NOT NULL,
  routing_key text NOT NULL,
  content bytea NOT NULL,
  properties jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz
);
CREATE INDEX IF NOT EXISTS warren_outbox_unsent ON ${t.outbox} (seq) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS warren_outbox_sent ON ${t.outbox} (sent_at) WHERE sent_at IS NOT NULL;
-- Wakes the relays when a writer commits (NOTIFY is delivered at commit, once per transaction).
CREATE OR REPLACE FUNCTION "${schema}".warren_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('${t.channel}', '');
  RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS warren_outbox_notify ON ${t.outbox};
CREATE TRIGGER warren_outbox_notify AFTER INSERT ON ${t.outbox}
  FOR EACH STATEMENT EXECUTE FUNCTION "${schema}".warren_outbox_notify();
-- One row per (consumer, message id) an idempotent handler has done, written in the handler's
-- transaction; reply holds an RPC handler's first reply, sent again to a duplicate request.
CREATE TABLE IF NOT EXISTS ${t.inbox} (
  consumer text NOT NULL,
  message_id text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  reply jsonb,
  PRIMARY KEY (consumer, message_id)
);
CREATE INDEX IF NOT EXISTS warren_inbox_received ON ${t.inbox} (received_at);
`;
}

/**
 * One row, `present`: whether every object of the migration is there already. Reads the catalogue
 * only (`to_regclass` takes no lock), so it can run on a database other instances are busy on.
 */
export function outboxPresenceSql(schema: string = OUTBOX_DEFAULTS.schema): string {
  const t = outboxTables(schema);
  const relation = (name: string) => `to_regclass('"${schema}".${name}') IS NOT NULL`;
  return `SELECT ${[
    'warren_outbox',
    'warren_outbox_unsent',
    'warren_outbox_sent',
    'warren_inbox',
    'warren_inbox_received',
  ]
    .map(relation)
    .join('\n   AND ')}
   AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'warren_outbox_notify' AND tgrelid = to_regclass('${t.outbox}'))
   AS present`;
}

/** The migration's statements one by one, for drivers that take one statement per query with parameters. */
export function outboxMigrationStatements(schema?: string): string[] {
  const sql = outboxMigrationSql(schema)
    .split('\n')
    .filter((line) => !line.startsWith('--'))
    .join('\n');
  const statements: string[] = [];
  let current = '';
  let inBody = false;
  for (const line of sql.split('\n')) {
    current += line + '\n';
    // The function body's own semicolons are inside $$ ... $$.
    if ((line.match(/\$\$/g)?.length ?? 0) % 2 === 1) inBody = !inBody;
    if (!inBody && line.trimEnd().endsWith(';')) {
      statements.push(current.trim());
      current = '';
    }
  }
  return statements;
}

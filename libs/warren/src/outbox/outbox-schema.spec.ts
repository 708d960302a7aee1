import { outboxMigrationSql, outboxMigrationStatements, outboxPresenceSql } from './outbox-schema.js';

describe('the outbox migration', () => {
  it('takes its advisory lock in its first statement, which Outbox.migrate() runs before its check', () => {
    expect(outboxMigrationStatements('shop')[0]).toBe(
      "SELECT pg_advisory_xact_lock(hashtext('warren_outbox_migration:shop'));",
    );
  });

  it('checks, before running, every table, index and trigger it creates', () => {
    const sql = outboxMigrationSql('shop');
    const created = [...sql.matchAll(/CREATE (?:TABLE|INDEX|TRIGGER) (?:IF NOT EXISTS )?(\S+)/g)].map((m) =>
      m[1].replace('"shop".', ''),
    );
    expect(created).toEqual([
      'warren_outbox',
      'warren_outbox_unsent',
      'warren_outbox_sent',
      'warren_outbox_notify',
      'warren_inbox',
      'warren_inbox_received',
    ]);
    const check = outboxPresenceSql('shop');
    for (const name of created)
      expect(check).toContain(name === 'warren_outbox_notify' ? `'${name}'` : `"shop".${name}'`);
  });
});

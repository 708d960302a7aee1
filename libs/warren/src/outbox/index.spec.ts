import * as outbox from './index.js';
import { outboxMigrationSql } from './outbox-schema.js';

describe("nestjs-warren/outbox's public API", () => {
  it('exports exactly the values users need, and no internal helper', () => {
    expect(Object.keys(outbox).sort()).toEqual(
      [
        'Idempotent',
        'Inbox',
        'Outbox',
        'OutboxError',
        'OutboxModule',
        'outboxMigrationSql',
        'pgPoolDatabase',
        'pgliteDatabase',
        'typeormDatabase',
      ].sort(),
    );
  });
});

describe('outboxMigrationSql()', () => {
  it('creates both tables, the unsent index and the NOTIFY trigger in the schema asked for', () => {
    const sql = outboxMigrationSql('shop');
    expect(sql).toContain('CREATE TABLE IF NOT EXISTS "shop".warren_outbox');
    expect(sql).toContain('CREATE TABLE IF NOT EXISTS "shop".warren_inbox');
    expect(sql).toContain('WHERE sent_at IS NULL');
    expect(sql).toContain("pg_notify('shop.warren_outbox', '')");
  });

  it('refuses a schema name it would have to quote', () => {
    expect(() => outboxMigrationSql('Shop"; DROP TABLE x; --')).toThrow(/lower-case SQL name/);
  });
});

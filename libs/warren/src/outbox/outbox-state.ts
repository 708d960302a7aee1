/** The OutboxModule's database and table names, shared by the outbox, the relay and the inbox. */
export const OUTBOX_STATE = Symbol('warren:outbox-state');

import { WarrenError } from '../warren.errors.js';

/**
 * The outbox or inbox cannot do what was asked with the database it was given: a `tx` outside a
 * transaction, a table the migration has not created, a driver it does not know. Thrown at the
 * call, before anything was written.
 */
export class OutboxError extends WarrenError {}

/** Reflect metadata key under which handler decorators store their specs on a method. */
export const WARREN_HANDLER_METADATA = 'warren:handler';

/**
 * The broker of `npm start` (everything in one process) when RABBITMQ_URL is unset: the in-process
 * broker, so a fresh machine needs nothing else to run the service.
 */
export const ALL_IN_ONE_DEFAULT_URL = 'memory://';

/** Split processes must meet on a real broker: an in-process one would leave each of them alone. */
export const SPLIT_DEFAULT_URL = 'amqp://localhost';

export interface BrokerChoice {
  url: string;
  /** How the log explains the choice. */
  source: 'RABBITMQ_URL' | 'default';
}

export function ordersBroker(layout: 'all-in-one' | 'split'): BrokerChoice {
  const fromEnv = process.env.RABBITMQ_URL;
  if (fromEnv) return { url: fromEnv, source: 'RABBITMQ_URL' };
  return { url: layout === 'all-in-one' ? ALL_IN_ONE_DEFAULT_URL : SPLIT_DEFAULT_URL, source: 'default' };
}

import type { HandledMessage } from '../consumer/message-consumer.js';

/** Everyone told of the deliveries a connection's consumers settle: the testing kit, an app's metrics. */
export class DeliveryObservers {
  private readonly listeners = new Set<(event: HandledMessage) => void>();

  /** Tells `listener` of every settled delivery from now on; returns the unsubscriber. */
  add(listener: (event: HandledMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Bound, so each consumer can hold it as its own callback. */
  readonly notify = (event: HandledMessage): void => {
    for (const listener of this.listeners) listener(event);
  };
}

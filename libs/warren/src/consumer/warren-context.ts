import type { Channel, ConsumeMessage, MessageProperties } from 'amqplib';

/**
 * What a handler knows about the delivery it is handling: the second argument of every handler
 * (or `@Ctx()`).
 */
export class WarrenContext {
  private settled = false;

  constructor(
    readonly message: ConsumeMessage,
    readonly queue: string,
    private readonly channel: Channel,
  ) {}

  get exchange(): string {
    return this.message.fields.exchange;
  }

  get routingKey(): string {
    return this.message.fields.routingKey;
  }

  get redelivered(): boolean {
    return this.message.fields.redelivered;
  }

  get deliveryTag(): number {
    return this.message.fields.deliveryTag;
  }

  get properties(): MessageProperties {
    return this.message.properties;
  }

  get headers(): Record<string, unknown> {
    return this.message.properties.headers ?? {};
  }

  /** True once the delivery has been acked or nacked; Warren then leaves it alone. */
  get isSettled(): boolean {
    return this.settled;
  }

  ack(): void {
    this.settle(() => this.channel.ack(this.message));
  }

  nack(options: { requeue?: boolean } = {}): void {
    this.settle(() => this.channel.nack(this.message, false, options.requeue ?? false));
  }

  private settle(action: () => void): void {
    if (this.settled) return;
    this.settled = true;
    try {
      action();
    } catch {
      // The channel died with the delivery on it: the broker requeues the message by itself.
    }
  }
}

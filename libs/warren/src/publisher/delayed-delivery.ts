import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Channel } from 'amqplib';
import type { WarrenConnection } from '../connection/warren-connection.js';
import { redactCredentials } from '../connection/redact.js';
import {
  type DelayLadderShape,
  type DelayTarget,
  delayLadderTopology,
  deliveryBinding,
} from '../topology/delay-ladder.js';
import { declareShared } from '../topology/topology-declarer.js';

/**
 * Puts a delay ladder (topology/delay-ladder.ts) on the broker when the first delayed message
 * needs it, and the deliver exchange's binding for each destination when the first message for it
 * does: an app that never delays a message declares nothing, and the ladder's queues are shared
 * by every app of the vhost (each declares the same, idempotently).
 *
 * Declarations run on a channel of their own, so a refusal (a destination queue or exchange that
 * does not exist) closes only it and comes back to the publisher as that message's error. What was
 * declared is remembered for the process's life: the ladder and the bindings are durable, so a
 * reconnect does not lose them; a delayed publish that fails makes the next one declare afresh
 * (`forget()`), in case someone deleted them.
 */
export class DelayedDelivery {
  private ladder?: Promise<void>;
  private readonly targets = new Map<string, Promise<void>>();

  constructor(
    private readonly connection: WarrenConnection,
    /** The publisher's channel: its connection being up is what a declaration waits for. */
    private readonly publishing: ChannelWrapper,
    readonly shape: DelayLadderShape,
  ) {}

  /** Resolves once the ladder and the binding that delivers to `target` are on the broker; rejects with the broker's reason. */
  ready(target: DelayTarget): Promise<void> {
    const key = 'exchange' in target ? `x:${target.exchange}` : `q:${target.queue}`;
    let declared = this.targets.get(key);
    if (!declared) {
      declared = this.declare(target);
      this.targets.set(key, declared);
      declared.catch(() => this.targets.delete(key));
    }
    return declared;
  }

  /** Forgets what was declared: the next delayed publish declares the ladder and its binding again. */
  forget(): void {
    this.ladder = undefined;
    this.targets.clear();
  }

  private async declare(target: DelayTarget): Promise<void> {
    if (!this.ladder) {
      const ladder = this.onChannel((ch) => declareShared(ch, delayLadderTopology(this.shape)));
      this.ladder = ladder;
      ladder.catch(() => {
        if (this.ladder === ladder) this.ladder = undefined;
      });
    }
    await this.ladder;
    const binding = deliveryBinding(this.shape.unitMs, target);
    await this.onChannel(async (ch) => {
      if ('exchange' in target) await ch.bindExchange(target.exchange, binding.source, '', binding.arguments);
      else await ch.bindQueue(target.queue, binding.source, '', binding.arguments);
    });
  }

  /** Runs declarations on a channel of their own, once the publishing connection is up. */
  private async onChannel(op: (channel: Channel) => Promise<unknown>): Promise<void> {
    await this.publishing.waitForConnect();
    try {
      await this.connection.withChannel('publish', op);
    } catch (err) {
      throw new Error(redactCredentials(err instanceof Error ? err.message : String(err)), { cause: err });
    }
  }
}

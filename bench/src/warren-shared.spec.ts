import { deliverExchangeName, levelName, undeliverableName } from '../../libs/warren/src/topology/delay-ladder.js';
import { DEFAULT_RETRY_DELAYS, retryQueueName } from '../../libs/warren/src/topology/failure-policy.js';
import { isWarrenShared } from './warren-shared.js';

describe("the names the driver's clean-up treats as Warren's shared ones", () => {
  it("are Warren's own: the retry queues of every delay and both types, and every ladder's names", () => {
    for (const delay of [...DEFAULT_RETRY_DELAYS, 250]) {
      expect(isWarrenShared(retryQueueName(delay))).toBe(true);
      expect(isWarrenShared(retryQueueName(delay, 'quorum'))).toBe(true);
    }
    for (const unitMs of [1000, 100]) {
      expect(isWarrenShared(levelName(unitMs, 0))).toBe(true);
      expect(isWarrenShared(levelName(unitMs, 27))).toBe(true);
      expect(isWarrenShared(deliverExchangeName(unitMs))).toBe(true);
      expect(isWarrenShared(undeliverableName(unitMs))).toBe(true);
    }
  });

  it("leave alone what is not Warren's: a trial's names, the broker's own, an app's look-alike", () => {
    for (const name of [
      'bench.abc.r1.pubsub.warren.q',
      'amq.topic',
      'warren',
      'warren.retry',
      'warren.delayed-orders',
    ]) {
      expect(isWarrenShared(name)).toBe(false);
    }
  });
});

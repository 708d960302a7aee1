import type { ExchangeType } from '../topology/amqp-rules.js';
import { topicMatches } from '../topology/binding-key.js';
import { headersMatch } from '../topology/headers-match.js';

/** One handler of a service queue and the bindings that bring it its messages. */
export interface DispatchTarget<R> {
  route: R;
  type?: ExchangeType;
  bindings: readonly { exchange: string; routingKey: string; arguments: Record<string, unknown> }[];
  /** Gets what no other target matches. */
  fallback: boolean;
}

interface ExchangeRoutes<R> {
  direct: Map<string, R>;
  topic: [string, R][];
  headers: [Record<string, unknown>, R][];
  fanout?: R;
  /** Topic matching is a walk over the key: its results are kept, up to a bound. */
  seen: Map<string, R | null>;
}

/** Topic routing keys whose handler is remembered, per exchange; past it the memo starts over. */
const MEMO_LIMIT = 10_000;

/**
 * Chooses the handler of a service queue's message by the message's original exchange and
 * routing key (headers exchanges: its headers), as the broker would have routed it to that
 * handler's own queue. The topology builder has made sure no two non-fallback targets can match
 * one message, so the first match is the only one.
 */
export class ServiceDispatcher<R> {
  private readonly exchanges = new Map<string, ExchangeRoutes<R>>();
  private readonly fallback?: R;

  constructor(targets: readonly DispatchTarget<R>[]) {
    for (const target of targets) {
      if (target.fallback) {
        this.fallback = target.route;
        continue;
      }
      for (const b of target.bindings) {
        let routes = this.exchanges.get(b.exchange);
        if (!routes) {
          routes = { direct: new Map(), topic: [], headers: [], seen: new Map() };
          this.exchanges.set(b.exchange, routes);
        }
        if (target.type === 'direct') routes.direct.set(b.routingKey, target.route);
        else if (target.type === 'topic') routes.topic.push([b.routingKey, target.route]);
        else if (target.type === 'headers') routes.headers.push([b.arguments, target.route]);
        else if (target.type === 'fanout') routes.fanout = target.route;
      }
    }
  }

  /** The handler of a message, or undefined when none (not even a fallback) takes it. */
  route(exchange: string, routingKey: string, headers: Record<string, unknown>): R | undefined {
    const routes = this.exchanges.get(exchange);
    return (routes && this.match(routes, routingKey, headers)) ?? this.fallback;
  }

  private match(routes: ExchangeRoutes<R>, routingKey: string, headers: Record<string, unknown>): R | undefined {
    if (routes.fanout !== undefined) return routes.fanout;
    const direct = routes.direct.get(routingKey);
    if (direct !== undefined) return direct;
    for (const [args, route] of routes.headers) if (headersMatch(args, headers)) return route;
    if (routes.topic.length === 0) return undefined;
    const known = routes.seen.get(routingKey);
    if (known !== undefined) return known ?? undefined;
    const found = routes.topic.find(([pattern]) => topicMatches(pattern, routingKey))?.[1];
    if (routes.seen.size >= MEMO_LIMIT) routes.seen.clear();
    routes.seen.set(routingKey, found ?? null);
    return found;
  }
}

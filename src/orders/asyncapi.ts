import type { INestApplicationContext } from '@nestjs/common';
import { type AnyContract, type AsyncApiDocument, WarrenAsyncApi } from 'nestjs-warren/asyncapi';
import { OrderPlaced, StepCompleted, StockCheck } from './contracts.js';
import type { OrdersParts } from './orders.module.js';

/**
 * The service's AsyncAPI document, served at /asyncapi and /asyncapi.json: what its handlers
 * receive comes from its decorators; what it sends depends on the parts this process runs.
 */
export function ordersAsyncApi(app: INestApplicationContext, parts: OrdersParts): AsyncApiDocument {
  const sends: AnyContract[] = [];
  if (parts.api) sends.push(OrderPlaced, StockCheck);
  if (parts.workers?.length) sends.push(StepCompleted);
  return WarrenAsyncApi.createDocument(app, {
    info: {
      title: 'Order service',
      version: '1.0.0',
      description:
        'Takes orders over HTTP, checks their stock over RPC, and has the sales, marketing and warehouse workers process each one.',
    },
    contracts: { OrderPlaced, StepCompleted, StockCheck },
    sends,
  });
}

import { Injectable } from '@nestjs/common';
import { RpcHandler } from 'nestjs-warren';
import { StockCheck, type StockCheckReply, type StockCheckRequest } from './contracts.js';

export interface Product {
  id: number;
  price_cents: number;
  in_stock: boolean;
}

/** Products 1 to 99 exist; a few are sold out, so the API's 409 has something to refuse. */
export const CATALOGUE_SIZE = 99;
export const OUT_OF_STOCK_IDS: readonly number[] = [13, 66];

/**
 * The product catalogue, in memory: the stand-in for the shop's product database. Prices are
 * made up but fixed, so an order's total is reproducible.
 */
@Injectable()
export class Catalogue {
  private readonly products = new Map<number, Product>(
    Array.from({ length: CATALOGUE_SIZE }, (_, i) => {
      const id = i + 1;
      return [id, { id, price_cents: 100 + ((id * 379) % 4900), in_stock: !OUT_OF_STOCK_IDS.includes(id) }];
    }),
  );

  find(id: number): Product | undefined {
    return this.products.get(id);
  }
}

/** Answers the API's price and stock check over RPC, before the API accepts an order. */
@Injectable()
export class StockService {
  constructor(private readonly catalogue: Catalogue) {}

  @RpcHandler(StockCheck)
  check(request: StockCheckRequest): StockCheckReply {
    const unknown = new Set<number>();
    const outOfStock = new Set<number>();
    let total = 0;
    for (const id of request.products_ids) {
      const product = this.catalogue.find(id);
      if (!product) unknown.add(id);
      else if (!product.in_stock) outOfStock.add(id);
      else total += product.price_cents;
    }
    return { unknown_ids: [...unknown], out_of_stock_ids: [...outOfStock], total_cents: total };
  }
}

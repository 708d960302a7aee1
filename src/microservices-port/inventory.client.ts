import { Inject, Injectable } from '@nestjs/common';
import type { ClientProxy } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import type { StockChange } from './inventory.controller.js';

export const INVENTORY = 'INVENTORY';

/** The calling side, unchanged by the port: it only knows a ClientProxy. */
@Injectable()
export class InventoryClient {
  constructor(@Inject(INVENTORY) private readonly client: ClientProxy) {}

  level(sku: string): Promise<{ sku: string; level: number }> {
    return firstValueFrom(this.client.send('inventory.level', sku));
  }

  total(): Promise<number> {
    return firstValueFrom(this.client.send({ cmd: 'inventory.total' }, {}));
  }

  async change(change: StockChange): Promise<void> {
    await firstValueFrom(this.client.emit('inventory.changed', change), { defaultValue: undefined });
  }
}

import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Headers,
  NotFoundException,
  Param,
  Post,
  Res,
} from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { parseOrderRequest } from './order-request.js';
import type { Order } from './order-store.js';
import { OrdersService } from './orders.service.js';

@Controller('order')
export class OrdersController {
  constructor(private readonly orders: OrdersService) {}

  /** 201 `{ id }` as soon as the order and its announcement are committed; the workers go on without the client. */
  @Post()
  async place(
    @Headers('content-type') contentType: string | undefined,
    @Body() body: unknown,
    @Res({ passthrough: true }) response: ServerResponse,
  ): Promise<{ id: string }> {
    const parsed = parseOrderRequest(contentType, body);
    if ('problems' in parsed) throw new BadRequestException(parsed.problems.join('; '));
    const order = await this.orders.place(parsed.order);
    response.setHeader('Location', `/order/${encodeURIComponent(order.id)}`);
    return { id: order.id };
  }

  @Get(':id')
  async find(@Param('id') id: string): Promise<Order> {
    const order = await this.orders.get(id);
    if (!order) throw new NotFoundException(`no order with id ${id}`);
    return order;
  }
}

import { Module } from '@nestjs/common';
import { WarrenModule } from 'nestjs-warren';
import { OrdersListener, warrenOptions } from './orders';

@Module({
  imports: [WarrenModule.forRootAsync({ useFactory: warrenOptions })],
  providers: [OrdersListener],
})
export class AppModule {}

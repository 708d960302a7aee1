import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { WarrenHealthIndicator } from 'nestjs-warren';

/**
 * Kubernetes' probes. Liveness never depends on the broker: restarting the API cannot bring a
 * broker back. Readiness is down until Warren has connected, declared and started consuming,
 * and again during an outage, so no traffic comes while orders could not be placed.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly warren: WarrenHealthIndicator,
  ) {}

  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([() => this.warren.liveness('rabbitmq')]);
  }

  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([() => this.warren.readiness('rabbitmq')]);
  }
}

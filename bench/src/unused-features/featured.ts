// What the featured app has and the measured handler does not use (issue 18: "no figure may get
// worse when enhancers, OpenTelemetry (without an SDK), schema validation or named connections are
// merely available but unused by a handler"): enhancers on other handlers (no global one, which
// would apply to the measured handler too), contracts with schemas on other handlers, a second,
// named connection with handlers of its own. Every idle handler has a queue of its own that no
// message reaches; the third feature, @opentelemetry/api without an SDK, is the trial process's
// (trial.ts hides the API from the plain app).
import {
  type CallHandler,
  type CanActivate,
  Catch,
  type ExceptionFilter,
  Injectable,
  type NestInterceptor,
  type PipeTransform,
  UseFilters,
  UseGuards,
  UseInterceptors,
  UsePipes,
} from '@nestjs/common';
import { defineEvent, defineRpc, Payload, RpcHandler, Subscribe, WarrenModule } from 'nestjs-warren';
import { z } from 'zod';
import type { AppExtras } from '../adapters/warren.js';
import { handlerKey, handlerQueue, type BrokerSpec } from '../harness.js';
import { OTHER_CONNECTION } from './variants.js';

@Injectable()
class AllowGuard implements CanActivate {
  canActivate(): boolean {
    return true;
  }
}

@Injectable()
class PassInterceptor implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler) {
    return next.handle();
  }
}

@Injectable()
class PassPipe implements PipeTransform {
  transform(value: unknown): unknown {
    return value;
  }
}

@Catch()
class RethrowFilter implements ExceptionFilter {
  catch(error: unknown): never {
    throw error;
  }
}

const Idle = z.object({ id: z.number().int(), body: z.string() });
type Idle = z.infer<typeof Idle>;

export function featuredExtras(spec: BrokerSpec): AppExtras {
  const queue = (i: number) => handlerQueue(spec, i);
  const prefetch = spec.prefetch;

  @Injectable()
  @UseGuards(AllowGuard)
  @UseInterceptors(PassInterceptor)
  @UsePipes(PassPipe)
  @UseFilters(RethrowFilter)
  class EnhancedHandlers {
    @Subscribe(spec.exchange, handlerKey(0), { queue: queue(0), prefetch })
    onIdle(@Payload() event: Idle): void {
      void event;
    }

    @RpcHandler(queue(1), { durable: false, prefetch })
    serveIdle(@Payload('id') id: number): number {
      return id;
    }
  }

  const IdleEvent = defineEvent<Idle>(spec.exchange, handlerKey(2), { schema: Idle });
  const IdleRpc = defineRpc<Idle, number>(queue(3), { schema: Idle });
  @Injectable()
  class ValidatedHandlers {
    @Subscribe(IdleEvent, { queue: queue(2), prefetch })
    onIdle(event: Idle): void {
      void event;
    }

    @RpcHandler(IdleRpc, { durable: false, prefetch })
    serveIdle(request: Idle): number {
      return request.id;
    }
  }

  @Injectable()
  class OtherConnectionHandlers {
    @Subscribe(spec.exchange, handlerKey(4), { queue: queue(4), prefetch, connection: OTHER_CONNECTION })
    onIdle(event: Idle): void {
      void event;
    }

    @RpcHandler(queue(5), { durable: false, prefetch, connection: OTHER_CONNECTION })
    serveIdle(request: Idle): number {
      return request.id;
    }
  }

  return {
    imports: [
      WarrenModule.forRoot({
        connection: OTHER_CONNECTION,
        url: spec.url,
        prefetch,
        connectionName: `bench:${spec.tag}:${OTHER_CONNECTION}`,
      }),
    ],
    providers: [EnhancedHandlers, ValidatedHandlers, OtherConnectionHandlers],
  };
}

import type { INestApplication, INestApplicationContext } from '@nestjs/common';
import { describeTopology } from '../discovery/topology-reader.js';
import { WarrenConfigurationError } from '../warren.errors.js';
import { type AsyncApiDocument, type AsyncApiDocumentOptions, buildDocument } from './document.js';
import { renderHtml } from './html.js';

/** A document, or what makes it when it is asked for (an app's topology exists only once it has booted). */
export type AsyncApiDocumentSource = AsyncApiDocument | (() => AsyncApiDocument | Promise<AsyncApiDocument>);

/** The minimum of Nest's HTTP adapter (Express or Fastify) that serving a document needs. */
interface HttpAdapter {
  get(path: string, handler: (request: unknown, response: unknown) => unknown): unknown;
  setHeader(response: unknown, name: string, value: string): unknown;
  reply(response: unknown, body: unknown, statusCode?: number): unknown;
}

/**
 * AsyncAPI for a Warren app, the way `@nestjs/swagger`'s SwaggerModule does OpenAPI: a document
 * built from what the app really declares, served as JSON and as a readable page.
 */
export class WarrenAsyncApi {
  /**
   * The AsyncAPI 3.0.0 document of an initialised app (after `app.init()`/`listen()`, or one
   * from `bootWithoutBroker()`): its exchanges and queues as channels, its handlers as receive
   * operations, its contracts as messages.
   */
  static createDocument(app: INestApplicationContext, options: AsyncApiDocumentOptions): AsyncApiDocument {
    return buildDocument(describeTopology(app), options);
  }

  /**
   * Serves `document` at `<path>.json` and as an HTML page at `<path>`. Nest registers its 404
   * handler when the app initialises, so call this before `app.init()`/`app.listen()`; since the
   * topology exists only after that, pass a function, called at each request:
   * `WarrenAsyncApi.setup('/asyncapi', app, () => WarrenAsyncApi.createDocument(app, { info }))`.
   */
  static setup(path: string, app: INestApplication, document: AsyncApiDocumentSource): void {
    if (typeof path !== 'string' || !path.startsWith('/') || path.length < 2) {
      throw new WarrenConfigurationError(
        `WarrenAsyncApi.setup(): path must start with "/" and name a route, got ${JSON.stringify(path)}`,
      );
    }
    const adapter = (app as { getHttpAdapter?: () => HttpAdapter | undefined }).getHttpAdapter?.();
    if (!adapter || typeof adapter.get !== 'function') {
      throw new WarrenConfigurationError(
        'WarrenAsyncApi.setup(): the app has no HTTP server (NestFactory.create(), not createApplicationContext())',
      );
    }
    if ((app as { isInitialized?: boolean }).isInitialized) {
      throw new WarrenConfigurationError(
        'WarrenAsyncApi.setup(): the app is already initialised, so its 404 handler would answer first; call setup() ' +
          'before app.init()/app.listen(), with a function for the document',
      );
    }
    const base = path.replace(/\/+$/, '');
    const jsonPath = `${base}.json`;
    const resolve = async () => (typeof document === 'function' ? await document() : document);
    const serve = (type: string, body: (doc: AsyncApiDocument) => string) => async (_: unknown, response: unknown) => {
      let text: string;
      try {
        text = body(await resolve());
      } catch (err) {
        adapter.setHeader(response, 'Content-Type', 'text/plain; charset=utf-8');
        return adapter.reply(response, `AsyncAPI document unavailable: ${(err as Error).message}`, 503);
      }
      adapter.setHeader(response, 'Content-Type', type);
      return adapter.reply(response, text, 200);
    };
    adapter.get(
      jsonPath,
      serve('application/json; charset=utf-8', (doc) => JSON.stringify(doc)),
    );
    adapter.get(
      base,
      serve('text/html; charset=utf-8', (doc) => renderHtml(doc, jsonPath)),
    );
  }
}

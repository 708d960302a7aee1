// nestjs-warren/asyncapi: AsyncAPI 3.0 documents built from the topology an app declares.
export { WarrenAsyncApi, type AsyncApiDocumentSource } from './warren-asyncapi.js';
export type {
  AnyContract,
  AsyncApiChannel,
  AsyncApiDocument,
  AsyncApiDocumentOptions,
  AsyncApiInfo,
  AsyncApiMessage,
  AsyncApiOperation,
} from './document.js';
export { jsonSchemaOf, type JsonSchema } from './json-schema.js';

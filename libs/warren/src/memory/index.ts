export { MemoryBroker, memoryBroker, type MemoryQueueInfo } from './broker.js';
export { createMemoryConnectionManager, isMemoryUrl } from './connection-manager.js';

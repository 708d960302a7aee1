/**
 * Adds method `name` to `cls` and applies `decorators` to it, as tsc's emitted code does for
 * `@decorator` syntax: the boot scenario's hundreds of handlers cannot be written out by hand.
 */
export function addDecoratedMethod(
  cls: { prototype: object },
  name: string,
  fn: (...args: any[]) => unknown,
  decorators: MethodDecorator[],
  parameterDecorators: ParameterDecorator[] = [],
): void {
  const descriptor: PropertyDescriptor = { value: fn, writable: true, configurable: true, enumerable: false };
  Object.defineProperty(cls.prototype, name, descriptor);
  parameterDecorators.forEach((decorate, index) => decorate(cls.prototype, name, index));
  const decorated = Reflect.decorate(decorators, cls.prototype, name, descriptor);
  Object.defineProperty(cls.prototype, name, decorated ?? descriptor);
}

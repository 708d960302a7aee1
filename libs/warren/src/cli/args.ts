/** A command-line mistake: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Any other failure the CLI explains itself (no broker, no management API...): exit code 2. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

export interface ParsedArgs {
  positionals: string[];
  /** `--name value` and `--name=value`; a flag without a value is `true`; repeated flags collect. */
  options: Map<string, (string | true)[]>;
}

/**
 * Parses `argv` against the flags a command knows: `valued` take a value, `switches` do not.
 * An unknown flag is a usage error rather than something silently ignored.
 */
export function parseArgs(argv: readonly string[], valued: readonly string[], switches: readonly string[]): ParsedArgs {
  const positionals: string[] = [];
  const options = new Map<string, (string | true)[]>();
  const add = (name: string, value: string | true) => options.set(name, [...(options.get(name) ?? []), value]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (switches.includes(name)) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      add(name, true);
    } else if (valued.includes(name)) {
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || (eq < 0 && value.startsWith('--'))) throw new UsageError(`--${name} needs a value`);
      add(name, value);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return { positionals, options };
}

/** The last value of a valued flag. */
export function option(args: ParsedArgs, name: string): string | undefined {
  const values = args.options.get(name);
  const last = values?.at(-1);
  return typeof last === 'string' ? last : undefined;
}

export function flag(args: ParsedArgs, name: string): boolean {
  return args.options.has(name);
}

/** A positive whole number given to `--name`, or undefined when absent. */
export function countOption(args: ParsedArgs, name: string): number | undefined {
  const raw = option(args, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1)
    throw new UsageError(`--${name} must be a positive whole number, got "${raw}"`);
  return Number(raw);
}

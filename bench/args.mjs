// args.mjs — the benches' command lines: options parsed with node:util, --help prints the usage,
// a bad option exits 2 with the usage (one place instead of a copy per bench).
import { parseArgs } from 'node:util';

/** Parse process.argv for `name` with `options` (parseArgs style); --help and -h are added. */
export function benchArgs(name, usage, options) {
  let values;
  try {
    ({ values } = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h', default: false } } }));
  } catch (e) {
    console.error(`${name}: ${e.message}\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  return values;
}

// Prints the demo's change events as NDJSON on stdout: one WriteInput (a protocol v1 event
// without its envelope, which `crr write` stamps) per line. The events come from the compiled
// demo/dataset.ts (compiled to .cache/demo-dist/demo/dataset.js by `npm run build:demo`).
//
//   node scripts/demo/events.mjs schema                       the catalog (types, user, query, UDF, loading job)
//   node scripts/demo/events.mjs dataset [--limit N]          countries, cities, airports and their edges
//   node scripts/demo/events.mjs live --seed S --count N [--limit N]
//                                                             a deterministic live mix of updates, deletes and metadata changes
//
// Exit codes: 0 done (also when the reader closes the pipe early); 2 bad arguments (usage is
// printed, or the message of a value out of range for the data); 1 anything else (dist missing,
// a data package not as expected).
import { once } from 'node:events';
import { Command, InvalidArgumentError } from 'commander';

/** Bytes gathered before a write to stdout. */
const CHUNK_BYTES = 1 << 16;

/** A reader that stops early (`| head`) is not an error: stop quietly. */
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

/** Parses a non-negative integer option; commander reports the error and the usage. */
const count = (value) => {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('expected a non-negative integer');
  return Number(value);
};
/** Parses a (possibly negative) integer option. */
const integer = (value) => {
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('expected an integer');
  return Number(value);
};

/** The compiled dataset module; a clear message when the build is missing. */
async function dataset() {
  try {
    return await import('../../.cache/demo-dist/demo/dataset.js');
  } catch (err) {
    if (err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('demo-dist/demo/dataset.js')) {
      process.stderr.write('events: .cache/demo-dist/demo/dataset.js is missing: run `npm run build:demo` first\n');
      process.exit(1);
    }
    throw err;
  }
}

/** Writes the events as NDJSON, waiting for 'drain' when stdout's buffer is full. */
async function print(events) {
  let chunk = '';
  for (const event of events) {
    chunk += `${JSON.stringify(event)}\n`;
    if (chunk.length >= CHUNK_BYTES) {
      if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
      chunk = '';
    }
  }
  if (chunk !== '' && !process.stdout.write(chunk)) await once(process.stdout, 'drain');
}

const program = new Command('events')
  .description('print the demo data set as change events (NDJSON of WriteInput objects) on stdout')
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

program
  .command('schema')
  .description('the catalog: vertex and edge types, a user, a query, a UDF, a loading job')
  .action(async () => print((await dataset()).schemaEvents()));

program
  .command('dataset')
  .description('vertex and edge upserts of every country, city and airport')
  .option('--limit <n>', 'print only the first n events', count)
  .action(async (opts) => print((await dataset()).datasetEvents({ limit: opts.limit })));

program
  .command('live')
  .description('a deterministic live mix of updates, deletes and metadata changes')
  .requiredOption('--seed <s>', 'seed of the mix (an integer)', integer)
  .requiredOption('--count <n>', 'how many events', count)
  .option('--limit <n>', 'the --limit the data set was written with (default: all of it)', count)
  .action(async (opts) => print((await dataset()).liveEvents(opts.seed, opts.count, { limit: opts.limit })));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // RangeError: an argument out of range for the data (e.g. a --limit with no airport in it)
  process.stderr.write(`events: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof RangeError ? 2 : 1);
}

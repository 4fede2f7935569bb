// Types of warden's JavaScript guest SDK (index.js). The WIT interface it wraps is typed in
// warden-host.d.ts.

/// <reference path="./warden-host.d.ts" />

/** The request header that names the secret a request should carry; warden removes it. */
export const SECRET_HEADER: 'warden-secret';

/**
 * Why an SDK call failed. `code` is machine-readable: a wasi:http error code
 * (`HTTP-request-denied`, `connection-refused`, …), a wasi:filesystem one (`no-entry`,
 * `not-permitted`, `access`, …), a secrets one (`not-granted`, `not-revealable`), or
 * `invalid-url` / `invalid-header` for the caller's own mistakes.
 */
export class WardenError extends Error {
  readonly code: string;
  /** Whether warden's policy refused the operation (rather than it failing on its own). */
  readonly refused: boolean;
}

/** A granted secret, as `secret` returns it. The handle holds no value. */
export interface WardenSecret {
  /** The secret's name, as in the manifest. */
  name(): string;
  /** The URL prefix of the requests warden adds this secret to, if it is injected. */
  binding(): string | undefined;
  /** The header warden sets on those requests, if it is injected. */
  header(): string | undefined;
  /**
   * The plaintext value; throws a `WardenError` (`not-revealable`) unless the manifest sets
   * `reveal = true`. Audited every time.
   */
  reveal(): string;
}

/**
 * Opens the secret the manifest grants under `name` (audited); throws a `WardenError`
 * (`not-granted`). `open` from `warden:host/secrets@0.1.0` is the same without the wrapper.
 */
export function secret(name: string): WardenSecret;

/**
 * `fetch` naming the secret `name` (the `warden-secret` header): warden injects its value
 * when the URL lies inside the secret's binding and refuses the request otherwise.
 */
export function fetchWithSecret(
  name: string,
  input: string | URL | Request,
  init?: RequestInit,
): Promise<Response>;

/** What `send` read: the status, the headers and the whole body. */
export interface SentResponse {
  readonly status: number;
  readonly headers: [string, string][];
  readonly body: Uint8Array;
  /** Whether the status is 2xx. */
  readonly ok: boolean;
  text(): string;
  json(): unknown;
}

export interface SendOptions {
  headers?: Record<string, string> | [string, string][];
  body?: string | Uint8Array;
  /** The name of the secret the request should carry. */
  secret?: string;
}

/**
 * Sends a request over wasi:http, synchronously, and reads the whole response. A failure is
 * a `WardenError` with the wasi:http error code; a refusal by warden has
 * `code === 'HTTP-request-denied'` and `refused === true`.
 */
export function send(method: string, url: string, options?: SendOptions): SentResponse;

/** Reads a whole file inside the manifest's `[[files]]` grants; throws a `WardenError`. */
export function readFile(path: string): Uint8Array;

/** Reads a whole file as UTF-8; see `readFile`. */
export function readTextFile(path: string): string;

/** The value of an environment variable (the manifest's `[env]`), or undefined. */
export function env(name: string): string | undefined;

/** The arguments after the program's name: the manifest's `args`, then the command line's. */
export function args(): string[];

/** Ends the run with this exit code (0–255); warden passes 0–119 through. */
export function exit(code: number): never;

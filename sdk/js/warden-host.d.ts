// Types of warden's own WIT interface, `warden:host/secrets@0.1.0` (wit/warden.wit), as a
// componentize-js guest imports it:
//
//   import { open } from 'warden:host/secrets@0.1.0';
//
// componentize-js turns `result<T, error>` into a function that returns T or throws: the
// thrown value is an `Error` whose `payload` is the WIT error (here one of `SecretsError`).
// `option<string>` is a string or `undefined`.

declare module 'warden:host/secrets@0.1.0' {
  /**
   * Why a secret operation was refused. Every refusal is written to the audit log.
   * - `not-granted`: the manifest grants no secret by this name.
   * - `not-revealable`: the secret is granted for injection only (no `reveal = true`).
   */
  export type Error = 'not-granted' | 'not-revealable';

  /** What a failed call throws: `payload` is the WIT error. */
  export interface SecretsError extends globalThis.Error {
    payload: Error;
  }

  /** A granted secret. The handle holds no value. */
  export class Secret {
    /** Handles come from `open` only. */
    private constructor();
    /** The secret's name, as in the manifest. */
    name(): string;
    /** The URL prefix of the requests the host adds this secret to, if it is injected. */
    binding(): string | undefined;
    /** The header the host sets on those requests, if it is injected. */
    header(): string | undefined;
    /**
     * The plaintext value. Throws a `SecretsError` (`not-revealable`) unless the manifest sets
     * `reveal = true`; every call is audited, allowed or not.
     */
    reveal(): string;
  }

  /**
   * Looks a secret up by name; throws a `SecretsError` (`not-granted`) when the manifest has
   * no such secret. Audited, allowed or not.
   */
  export function open(name: string): Secret;
}

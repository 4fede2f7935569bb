//! Loops over one host call so that a bench can time many calls with one export call: the
//! `bench` world's `run(call, n)` makes the call named by `call` `n` times and returns a sum of
//! what came back, so that nothing is optimised away.
//!
//! - `secret-name`, `secret-binding`: the methods of a `warden:host/secrets` handle (secret
//!   `bench`), warden's permission-checked host interface;
//! - `baseline-name`, `baseline-binding`: the same shapes (a resource method returning
//!   `string` / `option<string>`) on the bench's own no-op interface;
//! - `noop`: a no-op import, `func()`;
//! - `clock`: `wasi:clocks/monotonic-clock.now`, through std's `Instant`;
//! - `loop`: the loop alone, no call.

wit_bindgen::generate!({
    path: "../../wit",
    inline: r"
        package warden-bench:hostcall@0.1.0;

        interface baseline {
            resource thing {
                name: func() -> string;
                binding: func() -> option<string>;
            }
            open: func(name: string) -> thing;
            noop: func();
        }

        world bench {
            import warden:host/secrets@0.1.0;
            import baseline;
            export run: func(call: string, n: u32) -> u64;
        }
    ",
    world: "warden-bench:hostcall/bench",
    generate_all,
});

use std::hint::black_box;
use warden::host::secrets;
use warden_bench::hostcall::baseline;

struct Bench;

impl Guest for Bench {
    fn run(call: String, n: u32) -> u64 {
        let mut sum = 0u64;
        match call.as_str() {
            "secret-name" | "secret-binding" => {
                let Ok(s) = secrets::open("bench") else {
                    return u64::MAX;
                };
                if call == "secret-name" {
                    for _ in 0..n {
                        sum += s.name().len() as u64;
                    }
                } else {
                    for _ in 0..n {
                        sum += s.binding().map_or(0, |b| b.len()) as u64;
                    }
                }
            }
            "baseline-name" => {
                let t = baseline::open("bench");
                for _ in 0..n {
                    sum += t.name().len() as u64;
                }
            }
            "baseline-binding" => {
                let t = baseline::open("bench");
                for _ in 0..n {
                    sum += t.binding().map_or(0, |b| b.len()) as u64;
                }
            }
            "noop" => {
                for _ in 0..n {
                    baseline::noop();
                    sum += 1;
                }
            }
            "clock" => {
                for _ in 0..n {
                    black_box(std::time::Instant::now());
                    sum += 1;
                }
            }
            "loop" => {
                for i in 0..n {
                    sum += black_box(u64::from(i));
                }
            }
            _ => return u64::MAX,
        }
        sum
    }
}

export!(Bench);

//! Hostile guest: prints `recursing`, then recurses without bound until the wasm call stack
//! overflows (wasmtime's stack-overflow trap).
//!
//! Each frame keeps many values alive across the recursive call, so the engine must spill them
//! into the frame, making frames big on the engine's own stack. They are plain locals whose
//! address is never taken, so the frames take no room on the shadow stack in linear memory:
//! the wasm call stack runs out first, not that one (which would trap as an out-of-bounds
//! memory access instead). The result is combined after the call in a way tail-call and
//! accumulator elimination cannot turn into a loop.

use std::hint::black_box;

#[inline(never)]
fn recurse(depth: u64, seed: u64) -> u64 {
    if depth == u64::MAX {
        return seed;
    }
    let a = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ depth;
    let b = a.rotate_left(7) ^ seed;
    let c = b.wrapping_mul(a | 1);
    let d = c.rotate_left(13).wrapping_add(b);
    let e = d ^ (c >> 3);
    let f = e.wrapping_mul(d | 3);
    let g = f.rotate_left(29) ^ a;
    let h = g.wrapping_add(e.rotate_left(41));
    let below = recurse(depth + 1, h);
    below
        .wrapping_mul(a | 1)
        .rotate_left((b & 63) as u32)
        .wrapping_add(c ^ d)
        .wrapping_mul(e | 5)
        ^ f.wrapping_add(g).wrapping_mul(h | 7)
}

fn main() {
    println!("recursing");
    let result = recurse(black_box(0), black_box(1));
    println!("unreachable: {}", black_box(result));
}

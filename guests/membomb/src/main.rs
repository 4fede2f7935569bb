//! Hostile guest: allocates 1 MiB blocks, touching every page and keeping them all, printing
//! `allocated N MiB` every 16 MiB, until the host refuses to grow its memory.

use std::hint::black_box;

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;

fn main() {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; MIB];
        for i in (0..MIB).step_by(PAGE) {
            block[i] = (i / PAGE) as u8 | 1;
        }
        blocks.push(black_box(block));
        if blocks.len().is_multiple_of(16) {
            println!("allocated {} MiB", blocks.len());
        }
    }
}

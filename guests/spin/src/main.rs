//! Hostile guest: prints `spinning`, then loops forever without making a single call.

fn main() {
    println!("spinning");
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

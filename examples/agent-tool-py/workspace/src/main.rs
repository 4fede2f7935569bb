// The inventory service's entry point.
fn main() {
    let inventory = load_inventory();
    println!("{} items in the inventory", inventory.len());
}

fn load_inventory() -> Vec<String> {
    vec!["widget".to_string(), "gadget".to_string()]
}

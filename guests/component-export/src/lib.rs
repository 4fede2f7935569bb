//! A component with a custom export, for warden's component-model tests: the `transformer`
//! world's `transform` returns `transformed:` followed by the upper-cased value of the `INPUT`
//! environment variable, or `transformed:none` when it is not set.

wit_bindgen::generate!({
    inline: r"
        package warden:test;

        world transformer {
            export transform: func() -> string;
        }
    ",
});

struct Transformer;

impl Guest for Transformer {
    fn transform() -> String {
        match std::env::var("INPUT") {
            Ok(input) => format!("transformed:{}", input.to_uppercase()),
            Err(_) => "transformed:none".to_string(),
        }
    }
}

export!(Transformer);

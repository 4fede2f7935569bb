//! The `[[http]]` rules never panic: any rule URLs, any method, any request URI give a typed
//! rule set or an error, then a target or an error, then a verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::broker::{HttpRules, Target, UrlPrefix};
use warden::manifest::HttpRule;

// The input, as lines: a method, a request URI, then one rule URL per line.
fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let (Some(method), Some(uri)) = (lines.next(), lines.next()) else {
        return;
    };
    // The manifest types each URL once, with `UrlPrefix::parse`; the rules take the prefix.
    let rules: Vec<HttpRule> = lines
        .filter_map(|url| {
            Some(HttpRule {
                url: url.to_owned(),
                prefix: UrlPrefix::parse(url).ok()?,
                methods: vec![method.to_ascii_uppercase()],
            })
        })
        .collect();
    let rules = HttpRules::new(&rules);
    let Ok(uri) = http::Uri::try_from(uri) else {
        return;
    };
    if let Ok(target) = Target::of(&uri) {
        let _ = rules.check(method, &target);
        for rule in rules.rules() {
            let _ = rule.prefix.covers(&target);
        }
    }
});

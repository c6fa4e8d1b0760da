//! Any matcher text in a route file: parsing never panics, and what parses prints to a
//! canonical form that parses back to the same matcher.
#![no_main]

use alert_responder::alert::Labels;
use alert_responder::routing::Matcher;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (text, value) = input;
    let Ok(matcher) = Matcher::parse(text) else {
        return;
    };
    let printed = matcher.to_string();
    let again = Matcher::parse(&printed)
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
    assert_eq!(
        (&again.name, again.op(), &again.value),
        (&matcher.name, matcher.op(), &matcher.value)
    );
    let labels = Labels::from([(matcher.name.clone(), value.to_owned())]);
    assert_eq!(matcher.matches(&labels), again.matches(&labels));
});

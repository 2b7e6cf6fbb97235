//! Agent and controller configuration parsing on any text: no panic; a refusal always says why.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(problems) = readi_agent::Config::from_toml(text) {
        assert!(!problems.to_string().is_empty());
    }
    if let Err(problems) = readi_controller::config::Config::from_toml(text) {
        assert!(!problems.to_string().is_empty());
    }
});

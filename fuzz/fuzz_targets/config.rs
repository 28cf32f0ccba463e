//! The configuration file (`config::Config`): TOML parsing into the settings, validation, and
//! `ringmail config`'s rendering of the effective configuration.
//!
//! Properties: nothing panics on any text; a configuration that validates renders, and what it
//! renders parses back, validates (its secrets hidden) and renders the same again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmail::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(text) else {
        return;
    };
    let _ = config.connection_limits();
    let _ = config.backend_name();
    let _ = config.imap.message_limit();
    if config.validate().is_err() {
        return;
    }
    let rendered = config.render();
    let again = match Config::parse(&rendered) {
        Ok(c) => c,
        Err(e) => panic!("the rendered configuration does not parse: {e}\n{rendered}"),
    };
    if let Err(e) = again.validate() {
        panic!("the rendered configuration does not validate: {e}\n{rendered}");
    }
    assert_eq!(again.render(), rendered, "rendering is not stable");
});

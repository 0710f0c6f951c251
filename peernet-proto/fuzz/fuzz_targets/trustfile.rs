//! Trust-file parser: never panics on any text (formats 1 and 2, addresses field
//! included); what parses renders back to a (format 2) file that parses to the same
//! entries.
#![no_main]
use libfuzzer_sys::fuzz_target;
use peernet_proto::trustfile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(entries) = trustfile::parse(text) {
        let again = trustfile::parse(&trustfile::render(&entries)).expect("render output parses");
        assert_eq!(again, entries);
    }
});

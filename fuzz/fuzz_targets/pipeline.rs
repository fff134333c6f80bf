//! parse → normalize → sanitize → tag → dedup → publish on arbitrary bytes: it must never panic,
//! and nothing dangerous may survive into any output format (the same oracle as the hostile
//! suite). Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run pipeline` from this folder's parent.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/suite/common/oracle.rs"]
mod oracle;
#[path = "../../tests/suite/common/render.rs"]
mod render;

fuzz_target!(|data: &[u8]| {
    // A content type with a charset exercises the header-only decoding path on some inputs.
    let content_type = (data.first() == Some(&b'<') && data.len() % 2 == 0)
        .then_some("text/xml; charset=iso-8859-1");
    if let Ok(outputs) = render::render_all(data, content_type, "https://fuzz.example/feed/") {
        for (format, body) in outputs {
            let dangers = oracle::feed_dangers(body.as_bytes());
            assert!(dangers.is_empty(), "{format:?}: {dangers:?}\n{body}");
        }
    }
});

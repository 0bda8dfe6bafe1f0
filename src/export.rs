//! STUB(lead): replaced by the export module at merge.
use std::io::{self, Write};

/// One JSON line.
///
/// # Errors
/// io
pub fn write_json_line(event: &crate::event::Event, w: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer(&mut *w, event).map_err(io::Error::other)?;
    writeln!(w)
}

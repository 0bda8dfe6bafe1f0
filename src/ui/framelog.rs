//! An optional per-frame log for the desktop app bench (`benches/gui.rs`): with `NETWARDEN_FRAME_LOG=FILE`
//! set, the app appends one line per frame and the screen rectangles of the controls the bench clicks.
//!
//! The bench measures latency on the screen itself (Xvfb framebuffer); this log only tells it where to click
//! and how many frames the app drew. Off (no file, no cost) unless the variable is set.
//!
//! Lines: `frame N UNIX_MICROS TAB` and `rect NAME X0 Y0 X1 Y1` (physical pixels, written when it changes).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};

/// The environment variable naming the log file.
pub const FRAME_LOG_ENV: &str = "NETWARDEN_FRAME_LOG";

/// The frame log, when asked for.
#[derive(Default)]
pub struct FrameLog {
    out: Option<BufWriter<File>>,
    frames: u64,
    rects: HashMap<String, [i32; 4]>,
}

impl FrameLog {
    /// Opens the file named by `NETWARDEN_FRAME_LOG`; no log when unset or when it cannot be created.
    #[must_use]
    pub fn from_env() -> Self {
        let out = std::env::var_os(FRAME_LOG_ENV)
            .and_then(|path| File::create(path).ok())
            .map(BufWriter::new);
        Self {
            out,
            ..Self::default()
        }
    }

    /// True when lines are written.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.out.is_some()
    }

    /// Records the screen rectangle of a control (once, and again when it moves).
    pub fn rect(&mut self, name: &str, rect: egui::Rect, pixels_per_point: f32) {
        if self.out.is_none() {
            return;
        }
        #[expect(clippy::cast_possible_truncation, reason = "screen pixels")]
        let px = |v: f32| (v * pixels_per_point).round() as i32;
        let r = [px(rect.min.x), px(rect.min.y), px(rect.max.x), px(rect.max.y)];
        if self.rects.get(name) != Some(&r) {
            self.rects.insert(name.to_owned(), r);
            if let Some(out) = &mut self.out {
                // The bench notices a missing line; a failed write must not disturb the app.
                writeln!(out, "rect {name} {} {} {} {}", r[0], r[1], r[2], r[3]).ok();
            }
        }
    }

    /// Ends a frame: one line, flushed so the bench sees it at once.
    pub fn frame(&mut self, tab: &str) {
        let Some(out) = &mut self.out else { return };
        self.frames += 1;
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        writeln!(out, "frame {} {micros} {tab}", self.frames).ok();
        out.flush().ok();
    }
}

//! A path field with a "Browse…" button: the native file dialog (`rfd`) runs on a worker thread so the
//! window keeps repainting, and the typed path is the fallback where no dialog can open (no portal, no GTK,
//! a headless session).

use std::path::PathBuf;

use crossbeam_channel::{Receiver, bounded};

/// Whether the dialog picks an existing file or a file to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogKind {
    Open,
    Save,
}

/// Text field plus native dialog for one path.
#[derive(Debug, Default)]
pub struct PathField {
    /// The path as typed or picked.
    pub text: String,
    pending: Option<Receiver<Option<PathBuf>>>,
}

impl PathField {
    /// A field pre-filled with `text`.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            pending: None,
        }
    }

    /// The current path, `None` when the field is empty.
    #[must_use]
    pub fn path(&self) -> Option<PathBuf> {
        let trimmed = self.text.trim();
        (!trimmed.is_empty()).then(|| PathBuf::from(trimmed))
    }

    /// Shows `label`, the text field and the Browse button. `filter` is `(name, extensions)` for the dialog.
    pub fn ui(&mut self, ui: &mut egui::Ui, label: &str, kind: DialogKind, filter: (&str, &[&str])) {
        if let Some(rx) = &self.pending {
            match rx.try_recv() {
                Ok(picked) => {
                    if let Some(path) = picked {
                        self.text = path.display().to_string();
                    }
                    self.pending = None;
                }
                Err(crossbeam_channel::TryRecvError::Empty) => {
                    ui.ctx()
                        .request_repaint_after(std::time::Duration::from_millis(100));
                }
                Err(crossbeam_channel::TryRecvError::Disconnected) => self.pending = None,
            }
        }
        ui.horizontal(|ui| {
            let label_response = ui.label(label);
            ui.add(egui::TextEdit::singleline(&mut self.text).desired_width(320.0))
                .labelled_by(label_response.id);
            let browse = ui.add_enabled(self.pending.is_none(), egui::Button::new("Browse…"));
            // Every field has its own Browse button: its name says which file it picks.
            let name = format!("Browse: {label} ({} file)", filter.0);
            super::widgets::name_control(&browse, egui::accesskit::Role::Button, &name);
            let browse = browse.on_hover_text(name);
            if browse.clicked() {
                self.pending = spawn_dialog(kind, filter, self.path(), ui.ctx().clone());
            }
        });
    }
}

fn spawn_dialog(
    kind: DialogKind,
    (filter_name, extensions): (&str, &[&str]),
    current: Option<PathBuf>,
    ctx: egui::Context,
) -> Option<Receiver<Option<PathBuf>>> {
    let (tx, rx) = bounded(1);
    let filter_name = filter_name.to_owned();
    let extensions: Vec<String> = extensions.iter().map(|s| (*s).to_owned()).collect();
    let spawned = std::thread::Builder::new()
        .name("file-dialog".into())
        .spawn(move || {
            let mut dialog = rfd::FileDialog::new().add_filter(&filter_name, &extensions);
            if let Some(current) = current {
                if let Some(dir) = current.parent().filter(|d| d.is_dir()) {
                    dialog = dialog.set_directory(dir);
                }
                if let Some(name) = current.file_name() {
                    dialog = dialog.set_file_name(name.to_string_lossy());
                }
            }
            let picked = match kind {
                DialogKind::Open => dialog.pick_file(),
                DialogKind::Save => dialog.save_file(),
            };
            // The panel may be gone; then nobody needs the answer.
            tx.send(picked).ok();
            ctx.request_repaint();
        });
    spawned.ok().map(|_| rx)
}

//! The console (DESIGN §5): one `App` model, one `Msg` enum, views that only
//! read. The runtime blocks on the next message, drains the queue, and draws
//! only when something changed, at most once a frame.

pub mod app;
pub mod keymap;
mod runtime;
pub mod theme;
pub mod view;

pub use app::{App, ChangeError, Effect, Msg};
pub use runtime::{FRAME, MONITOR_FRAME, run};

/// Render the whole console into a buffer of `width`×`height` (tests, benchmarks).
pub fn render_to_buffer(app: &App, width: u16, height: u16) -> ratatui::buffer::Buffer {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut terminal = ratatui::Terminal::new(backend).expect("a test backend never fails");
    let theme = theme::Theme { color: false };
    terminal
        .draw(|f| view::draw(f, app, &theme))
        .expect("a test backend never fails");
    terminal.backend().buffer().clone()
}

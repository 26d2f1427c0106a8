//! Notify: turning changes into messages (render, pure) and getting them to subscribers (mailer).

pub mod mailer;
pub mod render;

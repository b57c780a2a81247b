//! Progress bars drawn by the host (so a plugin never writes terminal
//! control sequences), and lines printed above them.
//!
//! ```no_run
//! use trainbox_sdk::progress::{write_line, Bar};
//! let bar = Bar::new(100, "train", true);
//! bar.advance(1);
//! write_line("{'loss': '0.5'}");
//! bar.close();
//! ```

pub use crate::wit::trainbox::callback::progress::{write_line, Bar};

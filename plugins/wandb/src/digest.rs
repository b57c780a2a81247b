//! The two halves of a W&B artifact entry's digest, `base64(md5(file))` as
//! wandb's `md5_file_b64`, and the manifest's hex digest, through the
//! RustCrypto `md-5` and the `base64` crates. Streamed, so that a large
//! checkpoint is hashed while it is copied.

use base64::Engine as _;
use md5::Digest as _;

/// An MD5 computation in progress.
#[derive(Default)]
pub struct Md5(md5::Md5);

impl Md5 {
    /// Adds `data` to the message.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything added.
    pub fn finish(self) -> [u8; 16] {
        self.0.finalize().into()
    }
}

/// Lower-case hex, as Python's `hexdigest()`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with `=` padding, as Python's `base64.b64encode`.
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5(data: &[u8]) -> String {
        let mut h = Md5::default();
        h.update(data);
        hex(&h.finish())
    }

    #[test]
    fn digests_as_python() {
        assert_eq!(md5(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let mut h = Md5::default();
        for part in data.chunks(37) {
            h.update(part);
        }
        assert_eq!(hex(&h.finish()), md5(&data));
        // wandb's digest of an empty file and of b"hello world\n".
        let mut hello = Md5::default();
        hello.update(b"hello world\n");
        assert_eq!(base64(&hello.finish()), "b1kCrCNwJL3QwXbLkwY9xA==");
        assert_eq!(base64(b"ab"), "YWI=");
    }
}

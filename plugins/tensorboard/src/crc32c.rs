//! TFRecord's masked CRC-32C (Castagnoli), which guards each record's
//! length and payload; the CRC itself is the `crc` crate's `CRC_32_ISCSI`.

use crc::{Crc, CRC_32_ISCSI};

/// CRC-32C, as TFRecord and RFC 3720 define it.
const CASTAGNOLI: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// TFRecord's masked CRC: rotated right by 15 bits plus a constant, so that
/// a CRC stored inside the data it covers does not check itself.
pub fn masked(data: &[u8]) -> u32 {
    CASTAGNOLI
        .checksum(data)
        .rotate_right(15)
        .wrapping_add(0xA282_EAD8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_and_mask() {
        assert_eq!(CASTAGNOLI.checksum(b"123456789"), 0xE306_9283);
        assert_eq!(CASTAGNOLI.checksum(b""), 0);
        // 32 zero bytes, RFC 3720 B.4.
        assert_eq!(CASTAGNOLI.checksum(&[0u8; 32]), 0x8A91_36AA);
        // ((crc >> 15) | (crc << 17)) + 0xA282EAD8 of the check value.
        assert_eq!(masked(b"123456789"), 0xC78A_B0E5);
    }
}

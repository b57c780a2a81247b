//! CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) and TFRecord's
//! masked form of it, which guards each record's length and payload.

/// The byte-at-a-time lookup table, built at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &b| {
        TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8)
    })
}

/// TFRecord's masked CRC: rotated right by 15 bits plus a constant, so that
/// a CRC stored inside the data it covers does not check itself.
pub fn masked(data: &[u8]) -> u32 {
    crc32c(data).rotate_right(15).wrapping_add(0xA282_EAD8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_and_mask() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // 32 zero bytes, RFC 3720 B.4.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        // ((crc >> 15) | (crc << 17)) + 0xA282EAD8 of the check value.
        assert_eq!(masked(b"123456789"), 0xC78A_B0E5);
    }
}

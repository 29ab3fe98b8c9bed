//! Shared by the targets: split one fuzz input into two files.

/// Split `data` at a length read from its first two bytes (little endian): the
/// first file, then the rest.
pub fn two_parts(data: &[u8]) -> (&[u8], &[u8]) {
    if data.len() < 2 {
        return (data, &[]);
    }
    let n = u16::from_le_bytes([data[0], data[1]]) as usize;
    let rest = &data[2..];
    let n = n.min(rest.len());
    rest.split_at(n)
}

//! Cutting text to a byte budget (Event notes, health lines, container names) without
//! splitting a multi-byte character, which `String::truncate` would panic on.

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a character boundary.
pub fn prefix_within(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut cut = max_bytes;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// Cuts `text` to at most `max_bytes` bytes at a character boundary; true if it was cut.
pub fn truncate_within(text: &mut String, max_bytes: usize) -> bool {
    let keep = prefix_within(text, max_bytes).len();
    let cut = keep < text.len();
    text.truncate(keep);
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_byte_text_is_cut_before_the_character_that_does_not_fit() {
        // `€` is 3 bytes: 1000 bytes fall inside the 332nd one.
        let euros = format!("http://{}@x/", "€".repeat(400));
        let prefix = prefix_within(&euros, 1000);
        assert_eq!(prefix.len(), 7 + 3 * 331);
        assert!(euros.starts_with(prefix) && prefix.ends_with('€'));
        for max in 0..=euros.len() + 1 {
            let prefix = prefix_within(&euros, max);
            assert!(prefix.len() <= max && max.min(euros.len()) - prefix.len() < 3);
        }
        let mut text = "é".repeat(3);
        assert!(truncate_within(&mut text, 5));
        assert_eq!(text, "éé");
        assert!(!truncate_within(&mut text, 4));
        assert_eq!(text, "éé");
        assert_eq!(prefix_within("🦀", 3), "");
        assert_eq!(prefix_within("ascii", 3), "asc");
    }
}

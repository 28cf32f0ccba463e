//! The i;unicode-casemap collation (RFC 5051), which SORT and THREAD use for every string they
//! compare (RFC 5256 §2.1 and §3 for subjects and addresses, RFC 5957 §3 for display names).
//!
//! RFC 5051 §2 compares "titlecased canonicalized UTF-8": every character is replaced by its
//! titlecase (the UnicodeData simple mapping) and by its decomposition (UnicodeData's canonical or
//! compatibility mapping), repeatedly until neither changes anything; the results are compared
//! octet by octet (i;octet). What ringmail implements of that:
//!
//! - **Titlecase, completely.** The simple titlecase comes from std's case tables (a character's
//!   uppercase when that is one character), with the characters whose titlecase is not their
//!   uppercase handled explicitly: the DŽ/LJ/NJ/DZ digraphs, Georgian Mkhedruli (its own
//!   titlecase), and Greek with ypogegrammeni (titlecase with prosgegrammeni). A character
//!   without a simple mapping (ß, ŉ, ﬁ: only SpecialCasing gives them several characters) stays
//!   as it is, as UnicodeData says.
//! - **Decomposition, for the scripts mail subjects and names are mostly written in.** Latin
//!   (U+00A0–U+024F, U+1E00–U+1EFF), Greek (U+0370–U+03FF, U+1F00–U+1FFF), Cyrillic
//!   (U+0400–U+04FF), general punctuation (U+2000–U+206F) and the Latin ligatures
//!   (U+FB00–U+FB06) decompose by [`DECOMPOSITIONS`], generated from the Unicode 14 data; fullwidth
//!   ASCII (U+FF01–U+FF5E) by its algorithm. Other characters with a decomposition (CJK
//!   compatibility ideographs, Arabic presentation forms, circled and super/subscript forms
//!   outside those blocks, ...) are compared titlecased but not decomposed. As RFC 5051 asks,
//!   Hangul syllables are not decomposed (UnicodeData lists no mapping for them) and combining
//!   marks are not reordered (that is NFKD's step, not the collation's).
//! - **Octet comparison, exactly**: Rust compares `String`s by their UTF-8 bytes.
//!
//! Strings arrive as Rust strings, so RFC 5051's rules for invalid UTF-8 never apply (the MIME
//! layer has already turned undecodable bytes into U+FFFD).

use std::cmp::Ordering;

/// The RFC 5051 §2 canonical form of `s`: equal forms are equal under i;unicode-casemap, and
/// their byte order is the collation's order.
pub fn casemap(s: &str) -> String {
    if s.is_ascii() {
        // ASCII's titlecase is its uppercase and it has no decompositions.
        return s.to_ascii_uppercase();
    }
    let mut out = String::with_capacity(s.len() + s.len() / 2);
    for c in s.chars() {
        canonicalize(c, &mut out);
    }
    out
}

/// Appends the titlecased canonical form of one character.
fn canonicalize(c: char, out: &mut String) {
    let start = out.len();
    decompose(titlecase(c), out);
    // Titlecasing a decomposition may change it again (ǅ → D ž → D Ž → D Z ̌; ﬁ → f i → F I).
    // The table's decompositions are already complete, so one round settles every character
    // in it; the bound only guarantees termination.
    for _ in 0..4 {
        if out[start..].chars().all(|d| titlecase(d) == d) {
            return;
        }
        let round: String = out.drain(start..).collect();
        for d in round.chars() {
            decompose(titlecase(d), out);
        }
    }
}

/// Compares two strings under i;unicode-casemap.
pub fn compare(a: &str, b: &str) -> Ordering {
    casemap(a).cmp(&casemap(b))
}

/// The simple titlecase mapping (UnicodeData field 14, or the character itself).
fn titlecase(c: char) -> char {
    let shifted = |by: u32| char::from_u32(u32::from(c) + by).unwrap_or(c);
    match u32::from(c) {
        0x01C4..=0x01C6 => '\u{01C5}',
        0x01C7..=0x01C9 => '\u{01C8}',
        0x01CA..=0x01CC => '\u{01CB}',
        0x01F1..=0x01F3 => '\u{01F2}',
        // Unicode 11 gave Mkhedruli an uppercase (Mtavruli) but kept it its own titlecase.
        0x10D0..=0x10FA | 0x10FD..=0x10FF => c,
        // ᾀ → ᾈ: the uppercase is two characters (ἈΙ), the titlecase one.
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => shifted(8),
        0x1FB3 | 0x1FC3 | 0x1FF3 => shifted(9),
        _ => {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        }
    }
}

/// Appends the decomposition of `c` as far as the module doc says, or `c` itself.
fn decompose(c: char, out: &mut String) {
    match u32::from(c) {
        // Fullwidth ASCII: <wide> of U+0021..U+007E.
        code @ 0xFF01..=0xFF5E => out.push(char::from_u32(code - 0xFEE0).unwrap_or(c)),
        _ => match DECOMPOSITIONS.binary_search_by_key(&c, |&(from, _)| from) {
            Ok(i) => out.push_str(DECOMPOSITIONS[i].1),
            Err(_) => out.push(c),
        },
    }
}

/// The full decomposition (NFKD of the single character) of every character in the module doc's
/// ranges that is its own titlecase and has one, sorted by character. Generated with Python 3's
/// `unicodedata` (Unicode 14.0): `(c, normalize("NFKD", c))` for each such `c`.
#[rustfmt::skip]
const DECOMPOSITIONS: &[(char, &str)] = &[
    ('\u{a0}', " "), ('\u{a8}', " \u{308}"), ('\u{aa}', "a"), ('\u{af}', " \u{304}"),
    ('\u{b2}', "2"), ('\u{b3}', "3"), ('\u{b4}', " \u{301}"), ('\u{b8}', " \u{327}"),
    ('\u{b9}', "1"), ('\u{ba}', "o"), ('\u{bc}', "1\u{2044}4"), ('\u{bd}', "1\u{2044}2"),
    ('\u{be}', "3\u{2044}4"), ('\u{c0}', "A\u{300}"), ('\u{c1}', "A\u{301}"),
    ('\u{c2}', "A\u{302}"), ('\u{c3}', "A\u{303}"), ('\u{c4}', "A\u{308}"), ('\u{c5}', "A\u{30a}"),
    ('\u{c7}', "C\u{327}"), ('\u{c8}', "E\u{300}"), ('\u{c9}', "E\u{301}"), ('\u{ca}', "E\u{302}"),
    ('\u{cb}', "E\u{308}"), ('\u{cc}', "I\u{300}"), ('\u{cd}', "I\u{301}"), ('\u{ce}', "I\u{302}"),
    ('\u{cf}', "I\u{308}"), ('\u{d1}', "N\u{303}"), ('\u{d2}', "O\u{300}"), ('\u{d3}', "O\u{301}"),
    ('\u{d4}', "O\u{302}"), ('\u{d5}', "O\u{303}"), ('\u{d6}', "O\u{308}"), ('\u{d9}', "U\u{300}"),
    ('\u{da}', "U\u{301}"), ('\u{db}', "U\u{302}"), ('\u{dc}', "U\u{308}"), ('\u{dd}', "Y\u{301}"),
    ('\u{100}', "A\u{304}"), ('\u{102}', "A\u{306}"), ('\u{104}', "A\u{328}"),
    ('\u{106}', "C\u{301}"), ('\u{108}', "C\u{302}"), ('\u{10a}', "C\u{307}"),
    ('\u{10c}', "C\u{30c}"), ('\u{10e}', "D\u{30c}"), ('\u{112}', "E\u{304}"),
    ('\u{114}', "E\u{306}"), ('\u{116}', "E\u{307}"), ('\u{118}', "E\u{328}"),
    ('\u{11a}', "E\u{30c}"), ('\u{11c}', "G\u{302}"), ('\u{11e}', "G\u{306}"),
    ('\u{120}', "G\u{307}"), ('\u{122}', "G\u{327}"), ('\u{124}', "H\u{302}"),
    ('\u{128}', "I\u{303}"), ('\u{12a}', "I\u{304}"), ('\u{12c}', "I\u{306}"),
    ('\u{12e}', "I\u{328}"), ('\u{130}', "I\u{307}"), ('\u{132}', "IJ"), ('\u{134}', "J\u{302}"),
    ('\u{136}', "K\u{327}"), ('\u{139}', "L\u{301}"), ('\u{13b}', "L\u{327}"),
    ('\u{13d}', "L\u{30c}"), ('\u{13f}', "L\u{b7}"), ('\u{143}', "N\u{301}"),
    ('\u{145}', "N\u{327}"), ('\u{147}', "N\u{30c}"), ('\u{149}', "\u{2bc}n"),
    ('\u{14c}', "O\u{304}"), ('\u{14e}', "O\u{306}"), ('\u{150}', "O\u{30b}"),
    ('\u{154}', "R\u{301}"), ('\u{156}', "R\u{327}"), ('\u{158}', "R\u{30c}"),
    ('\u{15a}', "S\u{301}"), ('\u{15c}', "S\u{302}"), ('\u{15e}', "S\u{327}"),
    ('\u{160}', "S\u{30c}"), ('\u{162}', "T\u{327}"), ('\u{164}', "T\u{30c}"),
    ('\u{168}', "U\u{303}"), ('\u{16a}', "U\u{304}"), ('\u{16c}', "U\u{306}"),
    ('\u{16e}', "U\u{30a}"), ('\u{170}', "U\u{30b}"), ('\u{172}', "U\u{328}"),
    ('\u{174}', "W\u{302}"), ('\u{176}', "Y\u{302}"), ('\u{178}', "Y\u{308}"),
    ('\u{179}', "Z\u{301}"), ('\u{17b}', "Z\u{307}"), ('\u{17d}', "Z\u{30c}"),
    ('\u{1a0}', "O\u{31b}"), ('\u{1af}', "U\u{31b}"), ('\u{1c5}', "Dz\u{30c}"), ('\u{1c8}', "Lj"),
    ('\u{1cb}', "Nj"), ('\u{1cd}', "A\u{30c}"), ('\u{1cf}', "I\u{30c}"), ('\u{1d1}', "O\u{30c}"),
    ('\u{1d3}', "U\u{30c}"), ('\u{1d5}', "U\u{308}\u{304}"), ('\u{1d7}', "U\u{308}\u{301}"),
    ('\u{1d9}', "U\u{308}\u{30c}"), ('\u{1db}', "U\u{308}\u{300}"), ('\u{1de}', "A\u{308}\u{304}"),
    ('\u{1e0}', "A\u{307}\u{304}"), ('\u{1e2}', "\u{c6}\u{304}"), ('\u{1e6}', "G\u{30c}"),
    ('\u{1e8}', "K\u{30c}"), ('\u{1ea}', "O\u{328}"), ('\u{1ec}', "O\u{328}\u{304}"),
    ('\u{1ee}', "\u{1b7}\u{30c}"), ('\u{1f0}', "j\u{30c}"), ('\u{1f2}', "Dz"),
    ('\u{1f4}', "G\u{301}"), ('\u{1f8}', "N\u{300}"), ('\u{1fa}', "A\u{30a}\u{301}"),
    ('\u{1fc}', "\u{c6}\u{301}"), ('\u{1fe}', "\u{d8}\u{301}"), ('\u{200}', "A\u{30f}"),
    ('\u{202}', "A\u{311}"), ('\u{204}', "E\u{30f}"), ('\u{206}', "E\u{311}"),
    ('\u{208}', "I\u{30f}"), ('\u{20a}', "I\u{311}"), ('\u{20c}', "O\u{30f}"),
    ('\u{20e}', "O\u{311}"), ('\u{210}', "R\u{30f}"), ('\u{212}', "R\u{311}"),
    ('\u{214}', "U\u{30f}"), ('\u{216}', "U\u{311}"), ('\u{218}', "S\u{326}"),
    ('\u{21a}', "T\u{326}"), ('\u{21e}', "H\u{30c}"), ('\u{226}', "A\u{307}"),
    ('\u{228}', "E\u{327}"), ('\u{22a}', "O\u{308}\u{304}"), ('\u{22c}', "O\u{303}\u{304}"),
    ('\u{22e}', "O\u{307}"), ('\u{230}', "O\u{307}\u{304}"), ('\u{232}', "Y\u{304}"),
    ('\u{374}', "\u{2b9}"), ('\u{37a}', " \u{345}"), ('\u{37e}', ";"), ('\u{384}', " \u{301}"),
    ('\u{385}', " \u{308}\u{301}"), ('\u{386}', "\u{391}\u{301}"), ('\u{387}', "\u{b7}"),
    ('\u{388}', "\u{395}\u{301}"), ('\u{389}', "\u{397}\u{301}"), ('\u{38a}', "\u{399}\u{301}"),
    ('\u{38c}', "\u{39f}\u{301}"), ('\u{38e}', "\u{3a5}\u{301}"), ('\u{38f}', "\u{3a9}\u{301}"),
    ('\u{390}', "\u{3b9}\u{308}\u{301}"), ('\u{3aa}', "\u{399}\u{308}"),
    ('\u{3ab}', "\u{3a5}\u{308}"), ('\u{3b0}', "\u{3c5}\u{308}\u{301}"), ('\u{3d2}', "\u{3a5}"),
    ('\u{3d3}', "\u{3a5}\u{301}"), ('\u{3d4}', "\u{3a5}\u{308}"), ('\u{3f4}', "\u{398}"),
    ('\u{3f9}', "\u{3a3}"), ('\u{400}', "\u{415}\u{300}"), ('\u{401}', "\u{415}\u{308}"),
    ('\u{403}', "\u{413}\u{301}"), ('\u{407}', "\u{406}\u{308}"), ('\u{40c}', "\u{41a}\u{301}"),
    ('\u{40d}', "\u{418}\u{300}"), ('\u{40e}', "\u{423}\u{306}"), ('\u{419}', "\u{418}\u{306}"),
    ('\u{476}', "\u{474}\u{30f}"), ('\u{4c1}', "\u{416}\u{306}"), ('\u{4d0}', "\u{410}\u{306}"),
    ('\u{4d2}', "\u{410}\u{308}"), ('\u{4d6}', "\u{415}\u{306}"), ('\u{4da}', "\u{4d8}\u{308}"),
    ('\u{4dc}', "\u{416}\u{308}"), ('\u{4de}', "\u{417}\u{308}"), ('\u{4e2}', "\u{418}\u{304}"),
    ('\u{4e4}', "\u{418}\u{308}"), ('\u{4e6}', "\u{41e}\u{308}"), ('\u{4ea}', "\u{4e8}\u{308}"),
    ('\u{4ec}', "\u{42d}\u{308}"), ('\u{4ee}', "\u{423}\u{304}"), ('\u{4f0}', "\u{423}\u{308}"),
    ('\u{4f2}', "\u{423}\u{30b}"), ('\u{4f4}', "\u{427}\u{308}"), ('\u{4f8}', "\u{42b}\u{308}"),
    ('\u{1e00}', "A\u{325}"), ('\u{1e02}', "B\u{307}"), ('\u{1e04}', "B\u{323}"),
    ('\u{1e06}', "B\u{331}"), ('\u{1e08}', "C\u{327}\u{301}"), ('\u{1e0a}', "D\u{307}"),
    ('\u{1e0c}', "D\u{323}"), ('\u{1e0e}', "D\u{331}"), ('\u{1e10}', "D\u{327}"),
    ('\u{1e12}', "D\u{32d}"), ('\u{1e14}', "E\u{304}\u{300}"), ('\u{1e16}', "E\u{304}\u{301}"),
    ('\u{1e18}', "E\u{32d}"), ('\u{1e1a}', "E\u{330}"), ('\u{1e1c}', "E\u{327}\u{306}"),
    ('\u{1e1e}', "F\u{307}"), ('\u{1e20}', "G\u{304}"), ('\u{1e22}', "H\u{307}"),
    ('\u{1e24}', "H\u{323}"), ('\u{1e26}', "H\u{308}"), ('\u{1e28}', "H\u{327}"),
    ('\u{1e2a}', "H\u{32e}"), ('\u{1e2c}', "I\u{330}"), ('\u{1e2e}', "I\u{308}\u{301}"),
    ('\u{1e30}', "K\u{301}"), ('\u{1e32}', "K\u{323}"), ('\u{1e34}', "K\u{331}"),
    ('\u{1e36}', "L\u{323}"), ('\u{1e38}', "L\u{323}\u{304}"), ('\u{1e3a}', "L\u{331}"),
    ('\u{1e3c}', "L\u{32d}"), ('\u{1e3e}', "M\u{301}"), ('\u{1e40}', "M\u{307}"),
    ('\u{1e42}', "M\u{323}"), ('\u{1e44}', "N\u{307}"), ('\u{1e46}', "N\u{323}"),
    ('\u{1e48}', "N\u{331}"), ('\u{1e4a}', "N\u{32d}"), ('\u{1e4c}', "O\u{303}\u{301}"),
    ('\u{1e4e}', "O\u{303}\u{308}"), ('\u{1e50}', "O\u{304}\u{300}"),
    ('\u{1e52}', "O\u{304}\u{301}"), ('\u{1e54}', "P\u{301}"), ('\u{1e56}', "P\u{307}"),
    ('\u{1e58}', "R\u{307}"), ('\u{1e5a}', "R\u{323}"), ('\u{1e5c}', "R\u{323}\u{304}"),
    ('\u{1e5e}', "R\u{331}"), ('\u{1e60}', "S\u{307}"), ('\u{1e62}', "S\u{323}"),
    ('\u{1e64}', "S\u{301}\u{307}"), ('\u{1e66}', "S\u{30c}\u{307}"),
    ('\u{1e68}', "S\u{323}\u{307}"), ('\u{1e6a}', "T\u{307}"), ('\u{1e6c}', "T\u{323}"),
    ('\u{1e6e}', "T\u{331}"), ('\u{1e70}', "T\u{32d}"), ('\u{1e72}', "U\u{324}"),
    ('\u{1e74}', "U\u{330}"), ('\u{1e76}', "U\u{32d}"), ('\u{1e78}', "U\u{303}\u{301}"),
    ('\u{1e7a}', "U\u{304}\u{308}"), ('\u{1e7c}', "V\u{303}"), ('\u{1e7e}', "V\u{323}"),
    ('\u{1e80}', "W\u{300}"), ('\u{1e82}', "W\u{301}"), ('\u{1e84}', "W\u{308}"),
    ('\u{1e86}', "W\u{307}"), ('\u{1e88}', "W\u{323}"), ('\u{1e8a}', "X\u{307}"),
    ('\u{1e8c}', "X\u{308}"), ('\u{1e8e}', "Y\u{307}"), ('\u{1e90}', "Z\u{302}"),
    ('\u{1e92}', "Z\u{323}"), ('\u{1e94}', "Z\u{331}"), ('\u{1e96}', "h\u{331}"),
    ('\u{1e97}', "t\u{308}"), ('\u{1e98}', "w\u{30a}"), ('\u{1e99}', "y\u{30a}"),
    ('\u{1e9a}', "a\u{2be}"), ('\u{1ea0}', "A\u{323}"), ('\u{1ea2}', "A\u{309}"),
    ('\u{1ea4}', "A\u{302}\u{301}"), ('\u{1ea6}', "A\u{302}\u{300}"),
    ('\u{1ea8}', "A\u{302}\u{309}"), ('\u{1eaa}', "A\u{302}\u{303}"),
    ('\u{1eac}', "A\u{323}\u{302}"), ('\u{1eae}', "A\u{306}\u{301}"),
    ('\u{1eb0}', "A\u{306}\u{300}"), ('\u{1eb2}', "A\u{306}\u{309}"),
    ('\u{1eb4}', "A\u{306}\u{303}"), ('\u{1eb6}', "A\u{323}\u{306}"), ('\u{1eb8}', "E\u{323}"),
    ('\u{1eba}', "E\u{309}"), ('\u{1ebc}', "E\u{303}"), ('\u{1ebe}', "E\u{302}\u{301}"),
    ('\u{1ec0}', "E\u{302}\u{300}"), ('\u{1ec2}', "E\u{302}\u{309}"),
    ('\u{1ec4}', "E\u{302}\u{303}"), ('\u{1ec6}', "E\u{323}\u{302}"), ('\u{1ec8}', "I\u{309}"),
    ('\u{1eca}', "I\u{323}"), ('\u{1ecc}', "O\u{323}"), ('\u{1ece}', "O\u{309}"),
    ('\u{1ed0}', "O\u{302}\u{301}"), ('\u{1ed2}', "O\u{302}\u{300}"),
    ('\u{1ed4}', "O\u{302}\u{309}"), ('\u{1ed6}', "O\u{302}\u{303}"),
    ('\u{1ed8}', "O\u{323}\u{302}"), ('\u{1eda}', "O\u{31b}\u{301}"),
    ('\u{1edc}', "O\u{31b}\u{300}"), ('\u{1ede}', "O\u{31b}\u{309}"),
    ('\u{1ee0}', "O\u{31b}\u{303}"), ('\u{1ee2}', "O\u{31b}\u{323}"), ('\u{1ee4}', "U\u{323}"),
    ('\u{1ee6}', "U\u{309}"), ('\u{1ee8}', "U\u{31b}\u{301}"), ('\u{1eea}', "U\u{31b}\u{300}"),
    ('\u{1eec}', "U\u{31b}\u{309}"), ('\u{1eee}', "U\u{31b}\u{303}"),
    ('\u{1ef0}', "U\u{31b}\u{323}"), ('\u{1ef2}', "Y\u{300}"), ('\u{1ef4}', "Y\u{323}"),
    ('\u{1ef6}', "Y\u{309}"), ('\u{1ef8}', "Y\u{303}"), ('\u{1f08}', "\u{391}\u{313}"),
    ('\u{1f09}', "\u{391}\u{314}"), ('\u{1f0a}', "\u{391}\u{313}\u{300}"),
    ('\u{1f0b}', "\u{391}\u{314}\u{300}"), ('\u{1f0c}', "\u{391}\u{313}\u{301}"),
    ('\u{1f0d}', "\u{391}\u{314}\u{301}"), ('\u{1f0e}', "\u{391}\u{313}\u{342}"),
    ('\u{1f0f}', "\u{391}\u{314}\u{342}"), ('\u{1f18}', "\u{395}\u{313}"),
    ('\u{1f19}', "\u{395}\u{314}"), ('\u{1f1a}', "\u{395}\u{313}\u{300}"),
    ('\u{1f1b}', "\u{395}\u{314}\u{300}"), ('\u{1f1c}', "\u{395}\u{313}\u{301}"),
    ('\u{1f1d}', "\u{395}\u{314}\u{301}"), ('\u{1f28}', "\u{397}\u{313}"),
    ('\u{1f29}', "\u{397}\u{314}"), ('\u{1f2a}', "\u{397}\u{313}\u{300}"),
    ('\u{1f2b}', "\u{397}\u{314}\u{300}"), ('\u{1f2c}', "\u{397}\u{313}\u{301}"),
    ('\u{1f2d}', "\u{397}\u{314}\u{301}"), ('\u{1f2e}', "\u{397}\u{313}\u{342}"),
    ('\u{1f2f}', "\u{397}\u{314}\u{342}"), ('\u{1f38}', "\u{399}\u{313}"),
    ('\u{1f39}', "\u{399}\u{314}"), ('\u{1f3a}', "\u{399}\u{313}\u{300}"),
    ('\u{1f3b}', "\u{399}\u{314}\u{300}"), ('\u{1f3c}', "\u{399}\u{313}\u{301}"),
    ('\u{1f3d}', "\u{399}\u{314}\u{301}"), ('\u{1f3e}', "\u{399}\u{313}\u{342}"),
    ('\u{1f3f}', "\u{399}\u{314}\u{342}"), ('\u{1f48}', "\u{39f}\u{313}"),
    ('\u{1f49}', "\u{39f}\u{314}"), ('\u{1f4a}', "\u{39f}\u{313}\u{300}"),
    ('\u{1f4b}', "\u{39f}\u{314}\u{300}"), ('\u{1f4c}', "\u{39f}\u{313}\u{301}"),
    ('\u{1f4d}', "\u{39f}\u{314}\u{301}"), ('\u{1f50}', "\u{3c5}\u{313}"),
    ('\u{1f52}', "\u{3c5}\u{313}\u{300}"), ('\u{1f54}', "\u{3c5}\u{313}\u{301}"),
    ('\u{1f56}', "\u{3c5}\u{313}\u{342}"), ('\u{1f59}', "\u{3a5}\u{314}"),
    ('\u{1f5b}', "\u{3a5}\u{314}\u{300}"), ('\u{1f5d}', "\u{3a5}\u{314}\u{301}"),
    ('\u{1f5f}', "\u{3a5}\u{314}\u{342}"), ('\u{1f68}', "\u{3a9}\u{313}"),
    ('\u{1f69}', "\u{3a9}\u{314}"), ('\u{1f6a}', "\u{3a9}\u{313}\u{300}"),
    ('\u{1f6b}', "\u{3a9}\u{314}\u{300}"), ('\u{1f6c}', "\u{3a9}\u{313}\u{301}"),
    ('\u{1f6d}', "\u{3a9}\u{314}\u{301}"), ('\u{1f6e}', "\u{3a9}\u{313}\u{342}"),
    ('\u{1f6f}', "\u{3a9}\u{314}\u{342}"), ('\u{1f88}', "\u{391}\u{313}\u{345}"),
    ('\u{1f89}', "\u{391}\u{314}\u{345}"), ('\u{1f8a}', "\u{391}\u{313}\u{300}\u{345}"),
    ('\u{1f8b}', "\u{391}\u{314}\u{300}\u{345}"), ('\u{1f8c}', "\u{391}\u{313}\u{301}\u{345}"),
    ('\u{1f8d}', "\u{391}\u{314}\u{301}\u{345}"), ('\u{1f8e}', "\u{391}\u{313}\u{342}\u{345}"),
    ('\u{1f8f}', "\u{391}\u{314}\u{342}\u{345}"), ('\u{1f98}', "\u{397}\u{313}\u{345}"),
    ('\u{1f99}', "\u{397}\u{314}\u{345}"), ('\u{1f9a}', "\u{397}\u{313}\u{300}\u{345}"),
    ('\u{1f9b}', "\u{397}\u{314}\u{300}\u{345}"), ('\u{1f9c}', "\u{397}\u{313}\u{301}\u{345}"),
    ('\u{1f9d}', "\u{397}\u{314}\u{301}\u{345}"), ('\u{1f9e}', "\u{397}\u{313}\u{342}\u{345}"),
    ('\u{1f9f}', "\u{397}\u{314}\u{342}\u{345}"), ('\u{1fa8}', "\u{3a9}\u{313}\u{345}"),
    ('\u{1fa9}', "\u{3a9}\u{314}\u{345}"), ('\u{1faa}', "\u{3a9}\u{313}\u{300}\u{345}"),
    ('\u{1fab}', "\u{3a9}\u{314}\u{300}\u{345}"), ('\u{1fac}', "\u{3a9}\u{313}\u{301}\u{345}"),
    ('\u{1fad}', "\u{3a9}\u{314}\u{301}\u{345}"), ('\u{1fae}', "\u{3a9}\u{313}\u{342}\u{345}"),
    ('\u{1faf}', "\u{3a9}\u{314}\u{342}\u{345}"), ('\u{1fb2}', "\u{3b1}\u{300}\u{345}"),
    ('\u{1fb4}', "\u{3b1}\u{301}\u{345}"), ('\u{1fb6}', "\u{3b1}\u{342}"),
    ('\u{1fb7}', "\u{3b1}\u{342}\u{345}"), ('\u{1fb8}', "\u{391}\u{306}"),
    ('\u{1fb9}', "\u{391}\u{304}"), ('\u{1fba}', "\u{391}\u{300}"), ('\u{1fbb}', "\u{391}\u{301}"),
    ('\u{1fbc}', "\u{391}\u{345}"), ('\u{1fbd}', " \u{313}"), ('\u{1fbf}', " \u{313}"),
    ('\u{1fc0}', " \u{342}"), ('\u{1fc1}', " \u{308}\u{342}"),
    ('\u{1fc2}', "\u{3b7}\u{300}\u{345}"), ('\u{1fc4}', "\u{3b7}\u{301}\u{345}"),
    ('\u{1fc6}', "\u{3b7}\u{342}"), ('\u{1fc7}', "\u{3b7}\u{342}\u{345}"),
    ('\u{1fc8}', "\u{395}\u{300}"), ('\u{1fc9}', "\u{395}\u{301}"), ('\u{1fca}', "\u{397}\u{300}"),
    ('\u{1fcb}', "\u{397}\u{301}"), ('\u{1fcc}', "\u{397}\u{345}"), ('\u{1fcd}', " \u{313}\u{300}"),
    ('\u{1fce}', " \u{313}\u{301}"), ('\u{1fcf}', " \u{313}\u{342}"),
    ('\u{1fd2}', "\u{3b9}\u{308}\u{300}"), ('\u{1fd3}', "\u{3b9}\u{308}\u{301}"),
    ('\u{1fd6}', "\u{3b9}\u{342}"), ('\u{1fd7}', "\u{3b9}\u{308}\u{342}"),
    ('\u{1fd8}', "\u{399}\u{306}"), ('\u{1fd9}', "\u{399}\u{304}"), ('\u{1fda}', "\u{399}\u{300}"),
    ('\u{1fdb}', "\u{399}\u{301}"), ('\u{1fdd}', " \u{314}\u{300}"),
    ('\u{1fde}', " \u{314}\u{301}"), ('\u{1fdf}', " \u{314}\u{342}"),
    ('\u{1fe2}', "\u{3c5}\u{308}\u{300}"), ('\u{1fe3}', "\u{3c5}\u{308}\u{301}"),
    ('\u{1fe4}', "\u{3c1}\u{313}"), ('\u{1fe6}', "\u{3c5}\u{342}"),
    ('\u{1fe7}', "\u{3c5}\u{308}\u{342}"), ('\u{1fe8}', "\u{3a5}\u{306}"),
    ('\u{1fe9}', "\u{3a5}\u{304}"), ('\u{1fea}', "\u{3a5}\u{300}"), ('\u{1feb}', "\u{3a5}\u{301}"),
    ('\u{1fec}', "\u{3a1}\u{314}"), ('\u{1fed}', " \u{308}\u{300}"),
    ('\u{1fee}', " \u{308}\u{301}"), ('\u{1fef}', "`"), ('\u{1ff2}', "\u{3c9}\u{300}\u{345}"),
    ('\u{1ff4}', "\u{3c9}\u{301}\u{345}"), ('\u{1ff6}', "\u{3c9}\u{342}"),
    ('\u{1ff7}', "\u{3c9}\u{342}\u{345}"), ('\u{1ff8}', "\u{39f}\u{300}"),
    ('\u{1ff9}', "\u{39f}\u{301}"), ('\u{1ffa}', "\u{3a9}\u{300}"), ('\u{1ffb}', "\u{3a9}\u{301}"),
    ('\u{1ffc}', "\u{3a9}\u{345}"), ('\u{1ffd}', " \u{301}"), ('\u{1ffe}', " \u{314}"),
    ('\u{2000}', " "), ('\u{2001}', " "), ('\u{2002}', " "), ('\u{2003}', " "), ('\u{2004}', " "),
    ('\u{2005}', " "), ('\u{2006}', " "), ('\u{2007}', " "), ('\u{2008}', " "), ('\u{2009}', " "),
    ('\u{200a}', " "), ('\u{2011}', "\u{2010}"), ('\u{2017}', " \u{333}"), ('\u{2024}', "."),
    ('\u{2025}', ".."), ('\u{2026}', "..."), ('\u{202f}', " "), ('\u{2033}', "\u{2032}\u{2032}"),
    ('\u{2034}', "\u{2032}\u{2032}\u{2032}"), ('\u{2036}', "\u{2035}\u{2035}"),
    ('\u{2037}', "\u{2035}\u{2035}\u{2035}"), ('\u{203c}', "!!"), ('\u{203e}', " \u{305}"),
    ('\u{2047}', "??"), ('\u{2048}', "?!"), ('\u{2049}', "!?"),
    ('\u{2057}', "\u{2032}\u{2032}\u{2032}\u{2032}"), ('\u{205f}', " "), ('\u{fb00}', "ff"),
    ('\u{fb01}', "fi"), ('\u{fb02}', "fl"), ('\u{fb03}', "ffi"), ('\u{fb04}', "ffl"),
    ('\u{fb05}', "st"), ('\u{fb06}', "st"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_final() {
        assert!(DECOMPOSITIONS.windows(2).all(|w| w[0].0 < w[1].0));
        // A decomposition never needs decomposing again (the table holds full NFKD).
        for (from, to) in DECOMPOSITIONS {
            for c in to.chars() {
                assert!(
                    DECOMPOSITIONS.binary_search_by_key(&c, |&(f, _)| f).is_err(),
                    "{from:?}"
                );
            }
        }
    }

    #[test]
    fn equal_under_the_collation() {
        let cases: &[(&str, &str, bool)] = &[
            ("hello", "HELLO", true),
            ("Hello World", "hello world", true),
            ("hello", "hello ", false),
            // Precomposed and decomposed forms, in any case.
            ("é", "É", true),
            ("é", "e\u{301}", true),
            ("Émile", "EMILE", false),
            ("Grüße", "GRÜSSE", false),
            ("Grüße", "grüße", true),
            ("ß", "SS", false),
            // Digraphs: all three cases share the titlecase ǅ, which decomposes to D ž, whose
            // ž is titlecased again.
            ("ǆ", "Ǆ", true),
            ("ǅ", "D\u{17E}", true),
            ("ǅ", "DZ\u{30C}", true),
            // Greek with ypogegrammeni and its titlecase.
            ("ᾳ", "ᾼ", true),
            ("ᾀ", "ᾈ", true),
            ("σοφία", "ΣΟΦΊΑ", true),
            ("ёж", "ЁЖ", true),
            ("ё", "Е\u{308}", true),
            // Compatibility decompositions, titlecased after decomposing.
            ("ﬁ", "fi", true),
            ("ﬁ", "FI", true),
            ("ª", "A", true),
            ("Ｈｅｌｌｏ", "HELLO", true),
            ("\u{a0}x", " X", true),
            ("½", "1\u{2044}2", true),
            // Hangul syllables have no UnicodeData decomposition; marks are not reordered.
            ("한", "\u{1112}\u{1161}\u{11AB}", false),
            ("한", "한", true),
            ("a\u{323}\u{301}", "A\u{301}\u{323}", false),
            ("ვ", "Ვ", false),
        ];
        for &(a, b, equal) in cases {
            assert_eq!(compare(a, b) == Ordering::Equal, equal, "{a:?} {b:?}");
        }
    }

    #[test]
    fn order_under_the_collation() {
        // Each row sorts before the next.
        // A mark compares as the character after its letter, above every ASCII letter: Ä
        // sorts after AP, É after EV.
        let ordered = [
            "", " x", "1", "a", "apfel", "ÄRGER", "Eve", "Émile", "fred", "ÿ", "Zoë", "[", "Ω", "Я",
        ];
        for pair in ordered.windows(2) {
            assert_eq!(compare(pair[0], pair[1]), Ordering::Less, "{pair:?}");
            assert_eq!(compare(pair[1], pair[0]), Ordering::Greater, "{pair:?}");
        }
    }
}

//! The members of a POSIX character class in a UTF-8 locale, as glibc's `iswctype` tells them.
//!
//! In a UTF-8 locale glibc decides `[[:alpha:]]` and the other classes for every character by
//! `iswctype` in the locale's LC_CTYPE, so `é` is a letter and U+0085 a control character. The
//! regex crate's classes are either ASCII or Unicode's properties, neither of which is glibc's
//! table; asking glibc for every code point once gives the exact set, which the translation
//! writes out as ranges. Without that, a negated class would match characters pgrep leaves out.

use std::ffi::{CStr, c_char, c_int, c_uint, c_ulong};
use std::sync::OnceLock;

use super::{CLASSES, PatternError};

/// glibc's `wctype_t`, a handle to one class's table.
type ClassHandle = c_ulong;
/// glibc's `wint_t`.
type WideCharacter = c_uint;

// glibc exports these; the libc crate does not declare them for Linux.
unsafe extern "C" {
    fn wctype_l(name: *const c_char, locale: libc::locale_t) -> ClassHandle;
    fn iswctype_l(character: WideCharacter, class: ClassHandle, locale: libc::locale_t) -> c_int;
}

/// The largest code point the regex crate can match; glibc's UTF-8 decoder also yields larger
/// ones (up to 0x7FFFFFFF), which `BEYOND_UNICODE` in `ere` stands for.
const LAST_CODE_POINT: u32 = 0x10_FFFF;
/// The largest character a 4-byte sequence decodes to; glibc's decoder yields these, and they
/// must belong to no class, since the ranges cannot name them.
const LAST_FOUR_BYTE: u32 = 0x1F_FFFF;
/// The largest character a 6-byte sequence decodes to, checked for the same reason.
const LAST_DECODED: u32 = 0x7FFF_FFFF;

/// One class's members as inclusive code point ranges, ascending; surrogates are never members.
pub type Ranges = Vec<(u32, u32)>;

/// The class's members in the locale pgrep uses: the environment's LC_CTYPE when its character
/// set is UTF-8, otherwise C.UTF-8 (a pattern read for a UTF-8 locale in a process that runs in
/// another one, as in the tests).
pub fn members(name: &str) -> Result<&'static Ranges, PatternError> {
    static TABLES: [OnceLock<Result<Ranges, PatternError>>; CLASSES.len()] =
        [const { OnceLock::new() }; CLASSES.len()];
    let index = CLASSES
        .iter()
        .position(|&class| class == name)
        .expect("the parser admits only the twelve classes");
    TABLES[index]
        .get_or_init(|| enumerate(name))
        .as_ref()
        .map_err(Clone::clone)
}

fn enumerate(name: &str) -> Result<Ranges, PatternError> {
    let locale = Utf8Locale::open().ok_or_else(|| {
        PatternError(format!(
            "uses [:{name}:], which needs a UTF-8 locale's character table, and neither the environment's locale nor C.UTF-8 is installed"
        ))
    })?;
    let class_name = std::ffi::CString::new(name).expect("class names have no NUL");
    // SAFETY: the locale object lives until `locale` is dropped, after the last use here.
    let class = unsafe { wctype_l(class_name.as_ptr(), locale.0) };
    assert!(class != 0, "glibc knows the twelve POSIX classes");
    // SAFETY: iswctype_l only reads the locale's tables.
    let is_member =
        |code_point: u32| unsafe { iswctype_l(code_point as WideCharacter, class, locale.0) != 0 };
    let beyond = (LAST_CODE_POINT + 1..=LAST_FOUR_BYTE)
        .chain([LAST_DECODED])
        .any(is_member);
    if beyond {
        return Err(PatternError(format!(
            "uses [:{name}:], whose table in this locale covers code points beyond Unicode, which hacmp cannot match"
        )));
    }
    let mut ranges: Ranges = Vec::new();
    let scalars = (0..=LAST_CODE_POINT).filter(|&c| char::from_u32(c).is_some());
    for code_point in scalars.filter(|&c| is_member(c)) {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == code_point => *end = code_point,
            _ => ranges.push((code_point, code_point)),
        }
    }
    Ok(ranges)
}

/// A locale object with a UTF-8 LC_CTYPE, freed when dropped.
struct Utf8Locale(libc::locale_t);

impl Utf8Locale {
    fn open() -> Option<Utf8Locale> {
        [c"", c"C.UTF-8"].into_iter().find_map(|name| {
            // SAFETY: newlocale with a null base allocates a fresh object or returns null.
            let locale = unsafe {
                libc::newlocale(libc::LC_CTYPE_MASK, name.as_ptr(), std::ptr::null_mut())
            };
            if locale.is_null() {
                return None;
            }
            let locale = Utf8Locale(locale);
            // SAFETY: the string belongs to the locale object, which outlives this comparison.
            let codeset = unsafe { CStr::from_ptr(libc::nl_langinfo_l(libc::CODESET, locale.0)) };
            codeset
                .to_bytes()
                .eq_ignore_ascii_case(b"UTF-8")
                .then_some(locale)
        })
    }
}

impl Drop for Utf8Locale {
    fn drop(&mut self) {
        // SAFETY: the object came from newlocale and is freed once.
        unsafe { libc::freelocale(self.0) };
    }
}

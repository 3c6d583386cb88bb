//! Hyperscan, the multi-literal matcher Suricata uses, for the rule prefilters. It is loaded
//! at run time from the host's `libhs.so.5` (Debian's `libhyperscan5`, a dependency of the
//! `suricata` package), so the agent builds and runs without it and the prefilters fall back
//! to Aho-Corasick where it is missing ([`super::Matcher`]).
//!
//! Only the literal block-mode API is used: a prefilter is one database of its fast
//! patterns, compiled case-insensitively and single-match (a pattern is reported once per
//! buffer, all a prefilter needs), scanned with a per-thread [`Scratch`].

use std::{
    ffi::{c_char, c_int, c_uint, c_ulonglong, c_void, CStr},
    ptr,
    sync::OnceLock,
};

type HsError = c_int;
const HS_SUCCESS: HsError = 0;
const HS_FLAG_CASELESS: c_uint = 1;
const HS_FLAG_SINGLEMATCH: c_uint = 8;
const HS_MODE_BLOCK: c_uint = 1;

/// `hs_compile_error_t`.
#[repr(C)]
struct CompileError {
    message: *mut c_char,
    expression: c_int,
}

/// `match_event_handler`.
type OnMatch = unsafe extern "C" fn(c_uint, c_ulonglong, c_ulonglong, c_uint, *mut c_void) -> c_int;

/// The library's entry points (signatures as in `hs_compile.h`, `hs_runtime.h` and
/// `hs_common.h` of Hyperscan 5).
struct Api {
    compile_lit_multi: unsafe extern "C" fn(
        *const *const c_char,
        *const c_uint,
        *const c_uint,
        *const usize,
        c_uint,
        c_uint,
        *const c_void,
        *mut *mut c_void,
        *mut *mut CompileError,
    ) -> HsError,
    free_compile_error: unsafe extern "C" fn(*mut CompileError) -> HsError,
    free_database: unsafe extern "C" fn(*mut c_void) -> HsError,
    database_size: unsafe extern "C" fn(*const c_void, *mut usize) -> HsError,
    alloc_scratch: unsafe extern "C" fn(*const c_void, *mut *mut c_void) -> HsError,
    free_scratch: unsafe extern "C" fn(*mut c_void) -> HsError,
    scan: unsafe extern "C" fn(
        *const c_void,
        *const c_char,
        c_uint,
        c_uint,
        *mut c_void,
        Option<OnMatch>,
        *mut c_void,
    ) -> HsError,
    version: String,
    /// Keeps the entry points above mapped (the `OnceLock` holding this lives forever).
    _lib: libloading::Library,
}

/// The shared objects tried, in order: the runtime package's soname, then the development
/// symlink.
const SONAMES: [&str; 2] = ["libhs.so.5", "libhs.so"];

fn open() -> Result<Api, String> {
    let mut why = Vec::new();
    for name in SONAMES {
        // SAFETY: loading Hyperscan runs its library initialisers, which only set up its
        // own dispatch tables; nothing else in this process depends on them.
        match unsafe { libloading::Library::new(name) } {
            Ok(lib) => return bind(lib),
            Err(e) => why.push(format!("{name}: {e}")),
        }
    }
    Err(format!(
        "Hyperscan is not installed ({}); `apt-get install libhyperscan5` provides it",
        why.join("; ")
    ))
}

fn bind(lib: libloading::Library) -> Result<Api, String> {
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the symbol's type is the one Hyperscan 5's headers declare for it (the
            // field it is assigned to), and the library stays loaded as long as `Api`.
            *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                .map_err(|e| format!("libhs lacks {}: {e}", $name))?
        };
    }
    let valid_platform: unsafe extern "C" fn() -> HsError = sym!("hs_valid_platform");
    let version: unsafe extern "C" fn() -> *const c_char = sym!("hs_version");
    // SAFETY: both take no arguments; `hs_version` returns a static NUL-terminated string.
    let (valid, version) = unsafe { (valid_platform(), CStr::from_ptr(version())) };
    let version = version.to_string_lossy().into_owned();
    if valid != HS_SUCCESS {
        return Err(format!(
            "Hyperscan {version} does not run on this CPU (it needs SSSE3)"
        ));
    }
    Ok(Api {
        compile_lit_multi: sym!("hs_compile_lit_multi"),
        free_compile_error: sym!("hs_free_compile_error"),
        free_database: sym!("hs_free_database"),
        database_size: sym!("hs_database_size"),
        alloc_scratch: sym!("hs_alloc_scratch"),
        free_scratch: sym!("hs_free_scratch"),
        scan: sym!("hs_scan"),
        version,
        _lib: lib,
    })
}

fn api() -> Result<&'static Api, &'static str> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(open).as_ref().map_err(String::as_str)
}

/// The library's version when it can be used here, or why not (a sentence for the log and
/// `precinct doctor`).
pub fn available() -> Result<&'static str, &'static str> {
    api().map(|a| a.version.as_str())
}

/// Literal patterns compiled into one block-mode database.
pub struct Database {
    raw: *mut c_void,
    api: &'static Api,
}

// SAFETY: a compiled database is immutable; Hyperscan documents it as safe to scan from
// several threads at once (each with its own scratch), and it is freed once, on drop.
unsafe impl Send for Database {}
// SAFETY: as above: `&Database` only reads the database.
unsafe impl Sync for Database {}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: `raw` came from a successful compile and is freed only here.
        unsafe { (self.api.free_database)(self.raw) };
    }
}

impl Database {
    /// Compiles `patterns` (pattern `i` reported as `i`) to match ASCII case-insensitively,
    /// each at most once per scan. Empty patterns are left out (they would match everywhere).
    pub fn literals(patterns: &[Vec<u8>]) -> Result<Database, String> {
        let api = api().map_err(str::to_string)?;
        let mut exprs = Vec::new();
        let mut lens = Vec::new();
        let mut ids = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            if p.is_empty() {
                continue;
            }
            exprs.push(p.as_ptr().cast::<c_char>());
            lens.push(p.len());
            ids.push(c_uint::try_from(i).map_err(|_| "too many patterns".to_string())?);
        }
        if exprs.is_empty() {
            return Err("no patterns".into());
        }
        let flags = vec![HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH; exprs.len()];
        let count = c_uint::try_from(exprs.len()).map_err(|_| "too many patterns".to_string())?;
        let mut db = ptr::null_mut();
        let mut err = ptr::null_mut();
        // SAFETY: the four arrays have `count` elements and outlive the call; literal
        // expressions are read by length (they may hold NULs); the outputs are valid.
        let rc = unsafe {
            (api.compile_lit_multi)(
                exprs.as_ptr(),
                flags.as_ptr(),
                ids.as_ptr(),
                lens.as_ptr(),
                count,
                HS_MODE_BLOCK,
                ptr::null(),
                &mut db,
                &mut err,
            )
        };
        if rc == HS_SUCCESS && !db.is_null() {
            return Ok(Database { raw: db, api });
        }
        let mut why = format!("hs_compile_lit_multi failed ({rc})");
        if !err.is_null() {
            // SAFETY: on failure `err` points to an error whose message is a C string; it
            // is freed once, after the message was copied.
            unsafe {
                let e = &*err;
                if !e.message.is_null() {
                    why = format!(
                        "{} (pattern {})",
                        CStr::from_ptr(e.message).to_string_lossy(),
                        e.expression
                    );
                }
                (api.free_compile_error)(err);
            }
        }
        Err(why)
    }

    /// The database's size in bytes.
    pub fn bytes(&self) -> usize {
        let mut n = 0;
        // SAFETY: `raw` is a valid database and `n` a valid output.
        unsafe { (self.api.database_size)(self.raw, &mut n) };
        n
    }

    /// Calls `found` with each pattern that occurs in `hay`, once. An error (no scratch fitted
    /// to this database, a buffer over 4 GiB) means nothing is known about `hay`.
    pub fn scan(
        &self,
        hay: &[u8],
        scratch: &mut Scratch,
        found: &mut dyn FnMut(u32),
    ) -> Result<(), String> {
        if scratch.raw.is_null() {
            return Err("no scratch space".into());
        }
        let len = c_uint::try_from(hay.len()).map_err(|_| "buffer over 4 GiB".to_string())?;
        unsafe extern "C" fn on_match(
            id: c_uint,
            _from: c_ulonglong,
            _to: c_ulonglong,
            _flags: c_uint,
            ctx: *mut c_void,
        ) -> c_int {
            // SAFETY: `ctx` is the `&mut &mut dyn FnMut` passed to `hs_scan` below, alive
            // and not otherwise borrowed for the scan's duration.
            let found = unsafe { &mut *ctx.cast::<&mut dyn FnMut(u32)>() };
            found(id);
            0
        }
        let mut ctx: &mut dyn FnMut(u32) = found;
        // SAFETY: database and scratch are valid, the scratch is fitted to the database
        // (`Scratch::fit`) and borrowed mutably, so no other scan uses it; `hay` is `len`
        // bytes; the callback's context outlives the call.
        let rc = unsafe {
            (self.api.scan)(
                self.raw,
                hay.as_ptr().cast(),
                len,
                0,
                scratch.raw,
                Some(on_match),
                (&mut ctx as *mut &mut dyn FnMut(u32)).cast(),
            )
        };
        if rc == HS_SUCCESS {
            Ok(())
        } else {
            Err(format!("hs_scan failed ({rc})"))
        }
    }
}

/// Per-thread scan space, fitted to every database it scans with.
#[derive(Default)]
pub struct Scratch {
    raw: *mut c_void,
    api: Option<&'static Api>,
}

// SAFETY: a scratch may move between threads; `&mut` use keeps it to one scan at a time.
unsafe impl Send for Scratch {}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch")
            .field("allocated", &!self.raw.is_null())
            .finish()
    }
}

impl Scratch {
    /// Makes the scratch large enough for `db` too (it stays fit for earlier databases).
    pub fn fit(&mut self, db: &Database) -> Result<(), String> {
        // SAFETY: `db` is valid; `raw` is null or a scratch from an earlier call, which
        // Hyperscan reuses or frees and replaces.
        let rc = unsafe { (db.api.alloc_scratch)(db.raw, &mut self.raw) };
        self.api = Some(db.api);
        if rc == HS_SUCCESS {
            Ok(())
        } else {
            Err(format!("hs_alloc_scratch failed ({rc})"))
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let (Some(api), false) = (self.api, self.raw.is_null()) {
            // SAFETY: `raw` came from `hs_alloc_scratch` and is freed only here.
            unsafe { (api.free_scratch)(self.raw) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(db: &Database, s: &mut Scratch, hay: &[u8]) -> Vec<u32> {
        let mut v = Vec::new();
        db.scan(hay, s, &mut |i| v.push(i)).expect("scan");
        v.sort_unstable();
        v
    }

    #[test]
    fn literals_match_in_any_case_once_each_and_may_hold_nuls() {
        available().expect("Hyperscan (`cargo xtask setup` installs libhyperscan5)");
        let pats = vec![
            b"evil".to_vec(),
            Vec::new(),
            b"\x00\x01GET".to_vec(),
            b"abc".to_vec(),
        ];
        let db = Database::literals(&pats).expect("compiles");
        assert!(db.bytes() > 0);
        let mut s = Scratch::default();
        assert!(
            db.scan(b"x", &mut s, &mut |_| {}).is_err(),
            "no scratch yet"
        );
        s.fit(&db).expect("scratch");
        assert_eq!(found(&db, &mut s, b"EVIL evil eViL"), vec![0]);
        assert_eq!(found(&db, &mut s, b"..\x00\x01get..abc"), vec![2, 3]);
        assert_eq!(found(&db, &mut s, b"\x00\x01"), Vec::<u32>::new());
        assert_eq!(found(&db, &mut s, b""), Vec::<u32>::new());
        // One scratch serves a second database too once fitted to it.
        let other = Database::literals(&[b"zz".to_vec()]).expect("compiles");
        s.fit(&other).expect("scratch");
        assert_eq!(found(&other, &mut s, b"azzz"), vec![0]);
        assert_eq!(found(&db, &mut s, b"abc"), vec![3]);
        assert!(
            Database::literals(&[Vec::new()]).is_err(),
            "nothing to match"
        );
    }
}

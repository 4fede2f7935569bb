//! The secret scanner: finds any fragment of a secret value of at least [`MIN_FRAGMENT`] bytes
//! in data, in the forms a request or a response could carry it, and says where.
//!
//! Pure: std only, no I/O. [`crate::secrets::Secrets`] builds one [`Scanner`] per run and uses
//! it for the broker's exfiltration scan and response redaction, for audit text, and (through
//! [`StreamScan`]) for every write on a raw `[network]` socket.
//!
//! # How
//!
//! Every fragment of a value is an 8-byte string, and every form of it is a fixed-length run
//! that packs into a `u64`, so the scan is a table lookup per input position:
//!
//! - **bytes** (the raw view): every 8-byte substring of every value;
//! - **hex**, in any case: 16 hex digits decode to the same 8 bytes, so the same table;
//! - **base64 and base64url**, at every alignment: for a value starting at byte offset `k`
//!   (0, 1 or 2) of a base64 group, the characters fully determined by the value's bits — its
//!   *core*, independent of what comes before or after — are the same wherever the value sits,
//!   padded or not, `+/` or `-_`. Every [`MIN_B64_FRAGMENT`]-character run of the three cores
//!   is a key (60 bits).
//!
//! Each position of each view updates three rolling windows (8 bytes, 16 hex digits, 10
//! base64 characters) and looks them up in a 64 Kibit filter, then, rarely, a sorted table:
//! O(n) per view with a small constant. The views are the data as is and the data after each
//! of [`MAX_DECODE_ROUNDS`] rounds of decoding (double and triple encodings): `%XX` in any
//! case, JSON's `\uXXXX` and `\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t`. Spaces, tabs and line
//! breaks inside a hex or base64 run are skipped (hex dumps, MIME line wrapping).
//!
//! Each decoded byte remembers the range of input bytes it came from, so a hit in any view is
//! a range of the input: redaction replaces the union of those ranges by [`REDACTED`] and
//! scans its own output again, so nothing it returns carries a fragment in any view.

use std::ops::Range;

/// The shortest fragment of a secret the scan finds, in bytes of the value (in the raw,
/// percent- or JSON-decoded and hex views; base64 see [`MIN_B64_FRAGMENT`]).
///
/// Secrets are at least [`crate::secrets::MIN_SECRET_LEN`] (8) bytes, so every whole value is
/// found. Shorter fragments would be found in ordinary text: any 7 bytes of a token ending in
/// a common word, JSON punctuation around a value. Eight bytes (64 bits, one machine word) is
/// the shortest run that a random-looking secret does not share with ordinary data by chance,
/// and it makes every window a single integer compare. What a secret does share with other
/// data is found as the secret: a vendor prefix of 8 bytes or more (`sk_live_`,
/// `github_pat_`) in another key of the same kind counts as a fragment.
pub const MIN_FRAGMENT: usize = 8;

/// The shortest run of base64 (or base64url) characters of a value's core the scan finds.
///
/// An 8-byte fragment is 64 bits; wherever it sits in a base64 group, at least 10 characters
/// of its encoding carry only its bits (60 of them), so 10 is the largest minimum that still
/// finds every [`MIN_FRAGMENT`]-byte fragment at every alignment.
pub const MIN_B64_FRAGMENT: usize = 10;

/// Hex digits in a window: two per byte of a [`MIN_FRAGMENT`]-byte fragment.
const HEX_GRAM: usize = 2 * MIN_FRAGMENT;

/// How many times the decoded views undo percent and JSON escapes (`Views::feed` is written
/// out for this number of rounds). Three covers double and triple encoding (`%2573`,
/// `%252573`); each further round costs a pass over the data, and no client encodes more than
/// twice by accident.
pub const MAX_DECODE_ROUNDS: usize = 3;

/// How many times [`Scanner::redact`] redacts its own output again before it gives up and
/// returns the marker alone (or nothing, when the marker itself carries a fragment: a secret
/// that shares 8 bytes with [`REDACTED`]). More than one round is needed only when the joins
/// around a marker make a new fragment.
const MAX_REDACT_ROUNDS: usize = 3;

/// What is written in place of a secret value found in a response or an audit record.
pub const REDACTED: &str = "[redacted by warden]";

/// Bits of the filter in front of each table: 8 KiB, in L1 cache. A secret makes about 5 keys
/// per byte of value, so for a few secrets of a few dozen bytes about 1% of lookups go past it
/// on ordinary data.
const FILTER_BITS: u32 = 16;

/// A class table entry: a character that is not part of the encoding (ends a run).
const NONE: u8 = 0xff;
/// A class table entry: whitespace inside a run, skipped.
const SKIP: u8 = 0xfe;

/// Hex digit values, any case.
static HEX: [u8; 256] = {
    let mut t = [NONE; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            b' ' | b'\t' | b'\r' | b'\n' => SKIP,
            _ => NONE,
        };
        i += 1;
    }
    t
};

/// Base64 digit values, standard (`+/`) and URL-safe (`-_`) alphabets alike.
static B64: [u8; 256] = {
    let mut t = [NONE; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b' ' | b'\t' | b'\r' | b'\n' => SKIP,
            _ => NONE,
        };
        i += 1;
    }
    t
};

const B64_MASK: u64 = (1 << (6 * MIN_B64_FRAGMENT)) - 1;

/// Fixed-length keys and the secrets each belongs to.
#[derive(Clone)]
struct Table {
    filter: Vec<u64>,
    /// Sorted; `ids[i]` is the secret of `keys[i]`.
    keys: Vec<u64>,
    ids: Vec<u32>,
}

impl Table {
    fn new(mut pairs: Vec<(u64, u32)>) -> Table {
        pairs.sort_unstable();
        pairs.dedup();
        let mut filter = vec![0u64; 1 << (FILTER_BITS - 6)];
        for &(k, _) in &pairs {
            let h = Self::slot(k);
            filter[h >> 6] |= 1 << (h & 63);
        }
        Table {
            filter,
            keys: pairs.iter().map(|p| p.0).collect(),
            ids: pairs.iter().map(|p| p.1).collect(),
        }
    }

    #[inline]
    fn slot(key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - FILTER_BITS)) as usize
    }

    /// The secrets `key` belongs to (usually none).
    #[inline(always)]
    fn get(&self, key: u64) -> &[u32] {
        let h = Self::slot(key);
        if self.filter[h >> 6] & (1 << (h & 63)) == 0 {
            return &[];
        }
        self.lookup(key)
    }

    #[inline(never)]
    fn lookup(&self, key: u64) -> &[u32] {
        let lo = self.keys.partition_point(|&k| k < key);
        let len = self.keys[lo..].partition_point(|&k| k == key);
        &self.ids[lo..lo + len]
    }
}

/// The fragments of a run's secret values, ready to be looked for.
#[derive(Clone)]
pub struct Scanner {
    /// 8-byte fragments as big-endian integers: the raw and the hex windows.
    bytes: Table,
    /// 10-character runs of base64 cores, 6 bits a character.
    b64: Table,
    secrets: usize,
    /// Whether [`REDACTED`] itself is free of fragments (it is, unless a secret shares 8
    /// bytes with it).
    marker_clean: bool,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys: they are the values.
        f.debug_struct("Scanner")
            .field("secrets", &self.secrets)
            .field("keys", &(self.bytes.keys.len() + self.b64.keys.len()))
            .finish()
    }
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new(std::iter::empty::<&[u8]>())
    }
}

impl Scanner {
    /// A scanner for `values`; a hit names a value by its position in this list. Values
    /// shorter than [`MIN_FRAGMENT`] cannot be found and are skipped (`Secrets::load` refuses
    /// them).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Scanner {
        Scanner::with_public(values, std::iter::empty())
    }

    /// Like [`Scanner::new`], but fragments that also occur in `public` — text that is not
    /// secret, such as the secrets' names, which the manifest and the guest both know — are
    /// not looked for: a name like `vendor-key` for a value `vendor-key-…` stays readable in
    /// the audit log, and the rest of the value is still found.
    pub fn with_public<'a, 'p>(
        values: impl IntoIterator<Item = &'a [u8]>,
        public: impl IntoIterator<Item = &'p [u8]>,
    ) -> Scanner {
        let mut bytes = Vec::new();
        let mut b64 = Vec::new();
        let mut secrets = 0;
        for (id, v) in values.into_iter().enumerate() {
            secrets += 1;
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            keys(v, &mut |k| bytes.push((k, id)), &mut |k| b64.push((k, id)));
        }
        let (mut public_bytes, mut public_b64) = (Vec::new(), Vec::new());
        for p in public {
            keys(p, &mut |k| public_bytes.push(k), &mut |k| {
                public_b64.push(k)
            });
        }
        public_bytes.sort_unstable();
        public_b64.sort_unstable();
        bytes.retain(|(k, _)| public_bytes.binary_search(k).is_err());
        b64.retain(|(k, _)| public_b64.binary_search(k).is_err());
        let mut s = Scanner {
            bytes: Table::new(bytes),
            b64: Table::new(b64),
            secrets,
            marker_clean: true,
        };
        s.marker_clean = s.ranges(REDACTED.as_bytes()).is_empty();
        s
    }

    /// How many values the scanner was built from.
    pub fn len(&self) -> usize {
        self.secrets
    }

    pub fn is_empty(&self) -> bool {
        self.secrets == 0
    }

    /// Calls `hit(view, secrets, start, end)` for every window of `data`, in any view, that is
    /// a fragment of the listed secrets; `start..end` is where in `data` it lies. Within one
    /// view, hits come in the order of their ends.
    fn scan(&self, data: &[u8], hit: &mut impl FnMut(usize, &[u32], usize, usize)) {
        if self.is_empty() {
            return;
        }
        let mut views = Views::default();
        for (i, &byte) in data.iter().enumerate() {
            views
                .raw
                .push(unit(byte, i), self, &mut |ids, a, b| hit(0, ids, a, b));
        }
        // The decoded views differ only where there is something to decode.
        if data.iter().any(|&b| b == b'%' || b == b'\\') {
            for (i, &byte) in data.iter().enumerate() {
                views.feed(self, unit(byte, i), hit);
            }
            views.finish(self, hit);
        }
    }

    /// The secrets (by position in the list given to [`Scanner::new`]) with a fragment in
    /// `data`, in order, each once.
    pub fn found(&self, data: &[u8]) -> Vec<usize> {
        let mut seen = vec![false; self.secrets];
        self.scan(data, &mut |_, ids, _, _| {
            for &id in ids {
                if let Some(s) = seen.get_mut(id as usize) {
                    *s = true;
                }
            }
        });
        seen.iter()
            .enumerate()
            .filter(|(_, s)| **s)
            .map(|(i, _)| i)
            .collect()
    }

    /// Where in `data` fragments lie: sorted, disjoint, not touching.
    pub fn ranges(&self, data: &[u8]) -> Vec<Range<usize>> {
        let mut out: Vec<Range<usize>> = Vec::new();
        // The range each view is growing: its hits end in order, so a hit either overlaps it
        // or starts a new one, and a view adds at most one range per MIN_FRAGMENT bytes.
        let mut open: [Option<Range<usize>>; VIEWS] = Default::default();
        self.scan(data, &mut |view, _, start, end| {
            let Some(slot) = open.get_mut(view) else {
                return;
            };
            match slot {
                Some(r) if start <= r.end => {
                    r.start = r.start.min(start);
                    r.end = r.end.max(end);
                }
                _ => {
                    if let Some(done) = slot.replace(start..end) {
                        out.push(done);
                    }
                }
            }
        });
        out.extend(open.into_iter().flatten());
        out.sort_unstable_by_key(|r| r.start);
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(out.len());
        for r in out {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        merged
    }

    /// `data` with every fragment replaced by [`REDACTED`] (adjacent and overlapping ones by
    /// one marker); `None` when there is none. The result carries no fragment in any view.
    pub fn redact(&self, data: &[u8]) -> Option<Vec<u8>> {
        let ranges = self.ranges(data);
        if ranges.is_empty() {
            return None;
        }
        let marker: &[u8] = if self.marker_clean {
            REDACTED.as_bytes()
        } else {
            b""
        };
        let mut out = replace(data, &ranges, marker);
        for _ in 0..MAX_REDACT_ROUNDS {
            let again = self.ranges(&out);
            if again.is_empty() {
                return Some(out);
            }
            out = replace(&out, &again, marker);
        }
        if self.ranges(&out).is_empty() {
            Some(out)
        } else {
            Some(marker.to_vec())
        }
    }
}

/// The data between `ranges` (sorted, disjoint), with `marker` for each range.
fn replace(data: &[u8], ranges: &[Range<usize>], marker: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut at = 0;
    for r in ranges {
        out.extend_from_slice(data.get(at..r.start).unwrap_or_default());
        out.extend_from_slice(marker);
        at = r.end;
    }
    out.extend_from_slice(data.get(at..).unwrap_or_default());
    out
}

/// Calls `bytes` with the key of every 8-byte fragment of `v` and `b64` with the key of every
/// 10-character run of its base64 cores.
fn keys(v: &[u8], bytes: &mut impl FnMut(u64), b64: &mut impl FnMut(u64)) {
    for w in v.windows(MIN_FRAGMENT) {
        bytes(be_u64(w));
    }
    for k in 0..3 {
        let core = b64_core(v, k);
        for w in core.windows(MIN_B64_FRAGMENT) {
            b64(w.iter().fold(0u64, |acc, &d| (acc << 6) | u64::from(d)));
        }
    }
}

fn be_u64(w: &[u8]) -> u64 {
    w.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// The base64 digits of `k` zero bytes followed by `value` that depend on `value`'s bits only
/// (not on the `k` bytes before it, nor on what follows it).
fn b64_core(value: &[u8], k: usize) -> Vec<u8> {
    let bit = |i: usize| -> u8 {
        // Bit `i` of the stream (k zero bytes, then the value), most significant first.
        let byte = i / 8;
        if byte < k {
            return 0;
        }
        (value.get(byte - k).copied().unwrap_or(0) >> (7 - i % 8)) & 1
    };
    let first = (8 * k).div_ceil(6);
    let last = (8 * (k + value.len())) / 6;
    (first..last)
        .map(|j| (0..6).fold(0u8, |acc, b| (acc << 1) | bit(6 * j + b)))
        .collect()
}

/// Byte `i` of the input, as a unit of the raw view.
fn unit(byte: u8, i: usize) -> Unit {
    Unit {
        byte,
        fresh: true,
        start: i,
        end: i + 1,
    }
}

/// The raw view and one view per decoding round.
const VIEWS: usize = 1 + MAX_DECODE_ROUNDS;

/// The state of every view of one input.
#[derive(Clone, Debug, Default)]
struct Views {
    raw: Windows,
    rounds: [Unescape; MAX_DECODE_ROUNDS],
    /// The windows over each round's output.
    decoded: [Windows; MAX_DECODE_ROUNDS],
}

/// One byte of a view, and the input bytes it stands for.
#[derive(Clone, Copy, Debug, Default)]
struct Unit {
    byte: u8,
    /// Whether this view made it (the raw view's bytes, a round's decoded bytes). A window of
    /// a decoded view with no fresh unit in it is one the view before has already looked up.
    fresh: bool,
    start: usize,
    end: usize,
}

/// The three rolling windows over one view.
#[derive(Clone, Debug, Default)]
struct Windows {
    raw: u64,
    raw_seen: usize,
    raw_starts: [usize; MIN_FRAGMENT],
    /// How many more windows hold a fresh unit (see [`Unit::fresh`]); likewise below.
    raw_fresh: usize,
    hex: u64,
    hex_seen: usize,
    hex_starts: [usize; HEX_GRAM],
    hex_fresh: usize,
    b64: u64,
    b64_seen: usize,
    /// A ring of 16 (a power of two) rather than 10, for a mask instead of a division.
    b64_starts: [usize; 16],
    b64_fresh: usize,
}

/// Updates a fresh-window count as a unit enters a window of `k` units.
#[inline(always)]
fn enter(count: &mut usize, fresh: bool, k: usize) -> bool {
    *count = if fresh { k } else { count.saturating_sub(1) };
    *count > 0
}

impl Windows {
    #[inline]
    fn push(&mut self, u: Unit, s: &Scanner, hit: &mut impl FnMut(&[u32], usize, usize)) {
        self.raw = (self.raw << 8) | u64::from(u.byte);
        self.raw_starts[self.raw_seen % MIN_FRAGMENT] = u.start;
        self.raw_seen += 1;
        if enter(&mut self.raw_fresh, u.fresh, MIN_FRAGMENT) && self.raw_seen >= MIN_FRAGMENT {
            let ids = s.bytes.get(self.raw);
            if !ids.is_empty() {
                hit(ids, self.raw_starts[self.raw_seen % MIN_FRAGMENT], u.end);
            }
        }
        match HEX[usize::from(u.byte)] {
            // A run that now goes on over a decoded space is new: its next windows count.
            SKIP if u.fresh => self.hex_fresh = HEX_GRAM,
            SKIP => {}
            NONE => {
                self.hex_seen = 0;
                self.hex_fresh = 0;
            }
            d => {
                self.hex = (self.hex << 4) | u64::from(d);
                self.hex_starts[self.hex_seen % HEX_GRAM] = u.start;
                self.hex_seen += 1;
                if enter(&mut self.hex_fresh, u.fresh, HEX_GRAM) && self.hex_seen >= HEX_GRAM {
                    let ids = s.bytes.get(self.hex);
                    if !ids.is_empty() {
                        hit(ids, self.hex_starts[self.hex_seen % HEX_GRAM], u.end);
                    }
                }
            }
        }
        match B64[usize::from(u.byte)] {
            SKIP if u.fresh => self.b64_fresh = MIN_B64_FRAGMENT,
            SKIP => {}
            NONE => {
                self.b64_seen = 0;
                self.b64_fresh = 0;
            }
            d => {
                self.b64 = ((self.b64 << 6) | u64::from(d)) & B64_MASK;
                self.b64_starts[self.b64_seen % 16] = u.start;
                self.b64_seen += 1;
                if enter(&mut self.b64_fresh, u.fresh, MIN_B64_FRAGMENT)
                    && self.b64_seen >= MIN_B64_FRAGMENT
                {
                    let ids = s.b64.get(self.b64);
                    if !ids.is_empty() {
                        let first = (self.b64_seen - MIN_B64_FRAGMENT) % 16;
                        hit(ids, self.b64_starts[first], u.end);
                    }
                }
            }
        }
    }
}

/// Units held by an [`Unescape`] round until it can tell what they are: `\uXXXX` is the
/// longest escape.
const LOOKAHEAD: usize = 6;

/// One round of decoding: `%XX` (any case) and JSON string escapes. A unit that does not
/// start a complete escape passes through as it is (`+` stays `+`).
#[derive(Clone, Copy, Debug, Default)]
struct Unescape {
    held: [Unit; LOOKAHEAD],
    len: usize,
}

/// What the held units start with.
enum Escape {
    /// Not an escape (or not yet known to be one, at the end of the data): the first unit.
    Literal,
    /// An escape of `n` units decoding to `len` bytes.
    Decoded {
        n: usize,
        bytes: [u8; 4],
        len: usize,
    },
    /// Needs more units to tell.
    Wait,
}

impl Unescape {
    #[inline]
    fn push(&mut self, u: Unit, out: &mut impl FnMut(Unit)) {
        // Most units start no escape and pass straight through.
        if self.len == 0 && u.byte != b'%' && u.byte != b'\\' {
            out(Unit { fresh: false, ..u });
            return;
        }
        // `decide` waits only while fewer than LOOKAHEAD units are held.
        if let Some(slot) = self.held.get_mut(self.len) {
            *slot = u;
            self.len += 1;
        }
        self.drain(false, out);
    }

    fn finish(&mut self, out: &mut impl FnMut(Unit)) {
        self.drain(true, out);
    }

    fn drain(&mut self, eof: bool, out: &mut impl FnMut(Unit)) {
        while self.len > 0 {
            let n = match self.decide(eof) {
                Escape::Wait => return,
                Escape::Literal => {
                    out(Unit {
                        fresh: false,
                        ..self.held[0]
                    });
                    1
                }
                Escape::Decoded { n, bytes, len } => {
                    let (start, end) = (self.held[0].start, self.held[n - 1].end);
                    for &byte in &bytes[..len] {
                        out(Unit {
                            byte,
                            fresh: true,
                            start,
                            end,
                        });
                    }
                    n
                }
            };
            self.held.copy_within(n..self.len, 0);
            self.len -= n;
        }
    }

    fn decide(&self, eof: bool) -> Escape {
        let held = &self.held[..self.len];
        // The hex digits at `range` of an escape, as a number; `None` when one is not a digit;
        // `Some(None)` when not all are here yet.
        let digits = |range: Range<usize>| -> Option<Option<u32>> {
            let mut v = 0u32;
            for i in range {
                let Some(u) = held.get(i) else {
                    return Some(None);
                };
                match HEX[usize::from(u.byte)] {
                    d if d < 16 => v = (v << 4) | u32::from(d),
                    _ => return None,
                }
            }
            Some(Some(v))
        };
        let one = |n: usize, b: u8| Escape::Decoded {
            n,
            bytes: [b, 0, 0, 0],
            len: 1,
        };
        let wait = if eof { Escape::Literal } else { Escape::Wait };
        match held[0].byte {
            b'%' => match digits(1..3) {
                None => Escape::Literal,
                Some(None) => wait,
                Some(Some(v)) => one(3, v as u8),
            },
            b'\\' => match held.get(1).map(|u| u.byte) {
                None => wait,
                Some(c @ (b'"' | b'\\' | b'/')) => one(2, c),
                Some(b'b') => one(2, 0x08),
                Some(b'f') => one(2, 0x0c),
                Some(b'n') => one(2, b'\n'),
                Some(b'r') => one(2, b'\r'),
                Some(b't') => one(2, b'\t'),
                Some(b'u') => match digits(2..6) {
                    None => Escape::Literal,
                    Some(None) => wait,
                    // A lone surrogate half stands for no character: left as it is.
                    Some(Some(cp)) => match char::from_u32(cp) {
                        Some(c) => {
                            let mut bytes = [0; 4];
                            let len = c.encode_utf8(&mut bytes).len();
                            Escape::Decoded { n: 6, bytes, len }
                        }
                        None => Escape::Literal,
                    },
                },
                Some(_) => Escape::Literal,
            },
            _ => Escape::Literal,
        }
    }
}

impl Views {
    /// Pushes `u` through the decoding rounds, each round's output into its windows (views
    /// 1, 2, 3). Written out round by round, not recursively, so that it all inlines: this is
    /// the inner loop of every scan of data with an escape in it.
    #[inline]
    fn feed(&mut self, s: &Scanner, u: Unit, hit: &mut impl FnMut(usize, &[u32], usize, usize)) {
        let [r1, r2, r3] = &mut self.rounds;
        let [w1, w2, w3] = &mut self.decoded;
        r1.push(u, &mut |a| {
            w1.push(a, s, &mut |ids, x, y| hit(1, ids, x, y));
            r2.push(a, &mut |b| {
                w2.push(b, s, &mut |ids, x, y| hit(2, ids, x, y));
                r3.push(b, &mut |c| {
                    w3.push(c, s, &mut |ids, x, y| hit(3, ids, x, y))
                });
            });
        });
    }

    /// Flushes what the decoding rounds still hold (the data ended).
    fn finish(&mut self, s: &Scanner, hit: &mut impl FnMut(usize, &[u32], usize, usize)) {
        let [r1, r2, r3] = &mut self.rounds;
        let [w1, w2, w3] = &mut self.decoded;
        r1.finish(&mut |a| {
            w1.push(a, s, &mut |ids, x, y| hit(1, ids, x, y));
            r2.push(a, &mut |b| {
                w2.push(b, s, &mut |ids, x, y| hit(2, ids, x, y));
                r3.push(b, &mut |c| {
                    w3.push(c, s, &mut |ids, x, y| hit(3, ids, x, y))
                });
            });
        });
        r2.finish(&mut |b| {
            w2.push(b, s, &mut |ids, x, y| hit(2, ids, x, y));
            r3.push(b, &mut |c| {
                w3.push(c, s, &mut |ids, x, y| hit(3, ids, x, y))
            });
        });
        r3.finish(&mut |c| w3.push(c, s, &mut |ids, x, y| hit(3, ids, x, y)));
    }
}

/// The scan of a stream written in pieces (a TCP connection): it carries the state of every
/// view from one write to the next, so a fragment split across writes — at any point, over
/// any number of writes — is found in the write that completes it. No bytes are kept, only
/// windows and the few units a decoding round is holding; each write costs O(its length).
#[derive(Clone, Debug, Default)]
pub struct StreamScan {
    /// Bytes of the stream so far.
    offset: usize,
    views: Views,
}

impl StreamScan {
    pub fn new() -> StreamScan {
        StreamScan::default()
    }

    /// Scans `data` as the next write of the stream: returns the first secret (by position)
    /// found that `refused` says may not go out. When it returns `None` the write becomes part
    /// of the stream; a refused write does not (it never reaches the peer).
    pub fn write(
        &mut self,
        s: &Scanner,
        data: &[u8],
        refused: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        if s.is_empty() {
            return None;
        }
        let mut next = self.views.clone();
        let mut found: Option<usize> = None;
        let mut hit = |_: usize, ids: &[u32], _: usize, _: usize| {
            if found.is_none() {
                found = ids.iter().map(|&i| i as usize).find(|&i| refused(i));
            }
        };
        for (i, &byte) in data.iter().enumerate() {
            let u = unit(byte, self.offset + i);
            next.raw.push(u, s, &mut |ids, a, b| hit(0, ids, a, b));
            next.feed(s, u, &mut hit);
        }
        // What the decoding rounds hold may be the end of the stream: read it as such too,
        // on a copy (the next write may still complete an escape).
        let mut end = next.clone();
        end.finish(s, &mut hit);
        if found.is_none() {
            self.views = next;
            self.offset += data.len();
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use proptest::prelude::*;

    const KEY: &[u8] = b"sk_live_4f9c2d7e1b";

    fn scanner(values: &[&[u8]]) -> Scanner {
        Scanner::new(values.iter().copied())
    }

    fn hex(v: &[u8]) -> String {
        v.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn pct_all(v: &[u8]) -> String {
        v.iter().map(|b| format!("%{b:02x}")).collect()
    }

    fn finds(s: &Scanner, data: &[u8]) -> bool {
        !s.found(data).is_empty()
    }

    #[test]
    fn the_scanner_is_pure() {
        // ARCHITECTURE.md says so: std only, no I/O, nothing else of warden's.
        let src = include_str!("scan.rs");
        let code = src.split("#[cfg(test)]").next().unwrap_or_default();
        for banned in [
            "use crate::",
            "std::fs",
            "std::net",
            "std::io",
            "std::env",
            "std::process",
            "std::thread",
            "unsafe",
        ] {
            assert!(!code.contains(banned), "scan.rs uses {banned}");
        }
    }

    #[test]
    fn the_raw_value_and_its_fragments_are_found() {
        let s = scanner(&[KEY]);
        assert_eq!(s.found(b"x=sk_live_4f9c2d7e1b&y"), vec![0]);
        assert!(finds(&s, b"..._4f9c2d7..."), "an 8-byte fragment");
        assert!(!finds(&s, b"2d7e1b"));
    }

    #[test]
    fn a_seven_byte_fragment_is_not_found() {
        // The documented limit: fragments shorter than MIN_FRAGMENT pass.
        let s = scanner(&[KEY]);
        assert!(!finds(&s, b"x=4f9c2d7&y"));
        assert!(!finds(&s, hex(b"4f9c2d7").as_bytes()));
        assert!(!finds(&s, pct_all(b"4f9c2d7").as_bytes()));
    }

    #[test]
    fn ordinary_text_and_other_secrets_are_not_found() {
        let s = scanner(&[KEY]);
        for clean in [
            &b"GET /v1/charges?limit=10 HTTP/1.1\r\nHost: api.example.com\r\n\r\n"[..],
            b"{\"ok\":true,\"request\":1,\"token\":\"sk_test_00000000\"}",
            b"deadbeefcafebabe0123456789abcdefDEADBEEF",
            b"Authorization: Basic dXNlcjpwYXNzd29yZA==",
            b"%41%42%43%44%45%46%47%48%49%4a",
            b"sk_live",
        ] {
            assert!(!finds(&s, clean), "{}", String::from_utf8_lossy(clean));
        }
        let other = scanner(&[b"ghp_0123456789abcdefghij"]);
        assert!(!finds(&other, KEY));
        assert!(!finds(&other, STANDARD.encode(KEY).as_bytes()));
    }

    #[test]
    fn hex_in_any_case_is_found() {
        let s = scanner(&[KEY]);
        let lower = hex(KEY);
        let upper = lower.to_uppercase();
        let mixed: String = lower
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 3 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        let dump: String = lower
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        for data in [lower, upper, mixed, dump, format!("x{}", hex(KEY))] {
            assert!(finds(&s, data.as_bytes()), "{data}");
        }
    }

    #[test]
    fn every_byte_percent_encoded_in_any_case_and_double_encoded_is_found() {
        let s = scanner(&[KEY]);
        let lower = pct_all(KEY);
        let upper = lower.to_uppercase();
        let double = lower.replace('%', "%25");
        let triple = double.replace('%', "%25");
        let mixed: String = KEY
            .iter()
            .enumerate()
            .map(|(i, b)| match i % 3 {
                0 => format!("%{b:02X}"),
                1 => format!("%{b:02x}"),
                _ => char::from(*b).to_string(),
            })
            .collect();
        for data in [lower, upper, double, triple, mixed] {
            let q = format!("/collect?q={data}&x=1");
            assert!(finds(&s, q.as_bytes()), "{q}");
        }
    }

    #[test]
    fn json_escapes_are_found() {
        let s = scanner(&[KEY]);
        let json: String = KEY.iter().map(|b| format!("\\u{b:04x}")).collect();
        assert!(finds(&s, format!("{{\"t\":\"{json}\"}}").as_bytes()));
        let b64 = STANDARD.encode(b"xx/\xff\xfe?sk_live_4f9c2d7e1b");
        assert!(b64.contains('/'));
        assert!(finds(&s, b64.replace('/', "\\/").as_bytes()));
    }

    #[test]
    fn base64_at_every_offset_padded_or_not_std_or_url_is_found() {
        let s = scanner(&[KEY]);
        for prefix in [&b""[..], b"u", b"us", b"user:", b"\xfb\xff", b"\xff"] {
            let mut plain = prefix.to_vec();
            plain.extend_from_slice(KEY);
            plain.extend_from_slice(b"\xff\xfe");
            for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                let data = format!("Authorization: Basic {}", engine.encode(&plain));
                assert!(finds(&s, data.as_bytes()), "{data}");
            }
        }
        // MIME line wrapping.
        let wrapped: String = STANDARD
            .encode(KEY.repeat(3))
            .as_bytes()
            .chunks(7)
            .map(|c| format!("{}\r\n", String::from_utf8_lossy(c)))
            .collect();
        assert!(finds(&s, wrapped.as_bytes()));
    }

    #[test]
    fn redaction_replaces_every_form_in_place() {
        let s = scanner(&[KEY]);
        let out = s
            .redact(b"auth: Bearer sk_live_4f9c2d7e1b; again sk_live_4f9c2d7e1b.")
            .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "auth: Bearer [redacted by warden]; again [redacted by warden]."
        );
        let data = format!("q={}&h={}&end", pct_all(KEY), hex(KEY).to_uppercase());
        let out = s.redact(data.as_bytes()).unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "q=[redacted by warden]&h=[redacted by warden]&end"
        );
        let b64 = STANDARD.encode([b"user:", KEY].concat());
        let out = s.redact(b64.as_bytes()).unwrap_or_default();
        // `user:` and the bits it shares with the value's first and last characters stay.
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("dXNlcjp{REDACTED}I=")
        );
        assert!(s.redact(b"clean").is_none());
    }

    #[test]
    fn a_value_split_across_writes_is_found_in_the_write_that_completes_it() {
        let s = scanner(&[KEY]);
        let mut stream = StreamScan::new();
        assert_eq!(stream.write(&s, b"token=sk_live", |_| true), None);
        assert_eq!(stream.write(&s, b"_4f", |_| true), Some(0));
        // The refused write is not part of the stream: the same harmless write goes through.
        assert_eq!(stream.write(&s, b" and more", |_| true), None);

        // One byte at a time, percent-encoded across the split of an escape.
        let mut stream = StreamScan::new();
        let data = pct_all(KEY);
        let refused: Vec<_> = data
            .as_bytes()
            .iter()
            .map(|b| stream.write(&s, &[*b], |_| true))
            .collect();
        assert!(refused.iter().any(Option::is_some));

        // Allowed secrets go through.
        let mut stream = StreamScan::new();
        assert_eq!(stream.write(&s, KEY, |_| false), None);
    }

    #[test]
    fn an_escape_held_at_the_end_of_a_write_is_read_both_ways() {
        // `...%3` then `1`: after the first write the round holds `%3`; the fragment made of
        // the literal bytes must be found now, the decoded one when the escape completes.
        let s = scanner(&[b"abcdefg%3"]);
        let mut stream = StreamScan::new();
        assert_eq!(stream.write(&s, b"abcdefg%3", |_| true), Some(0));
        let s = scanner(&[b"abcdefg1"]);
        let mut stream = StreamScan::new();
        assert_eq!(stream.write(&s, b"abcdefg%3", |_| true), None);
        assert_eq!(stream.write(&s, b"1", |_| true), Some(0));
    }

    #[test]
    fn many_secrets_are_told_apart() {
        let s = scanner(&[b"first-secret-value", b"other-secret-val"]);
        assert_eq!(s.found(b"x first-secr"), vec![0]);
        assert_eq!(s.found(b"other-se"), vec![1]);
        // 8 bytes the two share are a fragment of both.
        assert_eq!(s.found(b"x first-secret-value"), vec![0, 1]);
        assert_eq!(s.found(b"nothing"), Vec::<usize>::new());
    }

    #[test]
    fn fragments_of_public_text_are_not_looked_for() {
        let value: &[u8] = b"vendor-key-Hx4nB8rE3w";
        let s = Scanner::with_public([value], [&b"vendor-key"[..]]);
        assert!(!finds(&s, b"secret vendor-key injected"));
        assert!(finds(&s, value));
        assert!(
            finds(&s, b"dor-key-H"),
            "fragments reaching past the public text"
        );
        let out = s
            .redact(b"vendor-key: vendor-key-Hx4nB8rE3w")
            .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("vendor-key: ven{REDACTED}")
        );
        // Without the public text, the name counts as a fragment.
        assert!(finds(&Scanner::new([value]), b"vendor-key"));
    }

    #[test]
    fn a_secret_sharing_the_marker_still_leaves_nothing() {
        let s = scanner(&[b"[redacted by warden]"]);
        let out = s.redact(b"x [redacted by warden] y").unwrap_or_default();
        assert!(
            s.ranges(&out).is_empty(),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    /// Every form the scan claims to see, of `v`.
    fn encode(v: &[u8], form: usize) -> Vec<u8> {
        match form {
            0 => v.to_vec(),
            1 => hex(v).into_bytes(),
            2 => hex(v).to_uppercase().into_bytes(),
            3 => pct_all(v).into_bytes(),
            4 => pct_all(v).to_uppercase().into_bytes(),
            5 => pct_all(v).replace('%', "%25").into_bytes(),
            6 => STANDARD.encode(v).into_bytes(),
            7 => STANDARD_NO_PAD.encode(v).into_bytes(),
            8 => URL_SAFE.encode(v).into_bytes(),
            _ => URL_SAFE_NO_PAD.encode(v).into_bytes(),
        }
    }
    const FORMS: usize = 10;

    /// Bytes in a base64 form are placed after a prefix of 0..3 bytes so every alignment is
    /// tried; the prefix is part of what is encoded.
    fn carrier(secret: &[u8], form: usize, align: &[u8], before: &[u8], after: &[u8]) -> Vec<u8> {
        let inner = if form >= 6 {
            encode(&[align, secret, after].concat(), form)
        } else {
            encode(secret, form)
        };
        [before, &inner, after].concat()
    }

    fn secret() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(0x21u8..0x7f, 8..=64),
            proptest::collection::vec(any::<u8>(), 8..=64),
        ]
    }

    fn noise() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..64)
    }

    /// Views of `data` as the scan sees them: for the property that redaction leaves no
    /// fragment, checked by brute force rather than by the scanner itself.
    fn brute_views(data: &[u8]) -> Vec<Vec<u8>> {
        let mut views = vec![data.to_vec()];
        let mut cur = data.to_vec();
        for _ in 0..MAX_DECODE_ROUNDS {
            let mut next = Vec::new();
            let mut i = 0;
            while i < cur.len() {
                let h = |j: usize| cur.get(j).map(|b| HEX[usize::from(*b)]).filter(|d| *d < 16);
                if cur[i] == b'%'
                    && let (Some(a), Some(b)) = (h(i + 1), h(i + 2))
                {
                    next.push(a << 4 | b);
                    i += 3;
                    continue;
                }
                next.push(cur[i]);
                i += 1;
            }
            views.push(next.clone());
            cur = next;
        }
        views
    }

    // 256 cases each by default; PROPTEST_CASES=N for a longer run.
    proptest! {
        #[test]
        fn any_secret_in_any_form_at_any_offset_is_found(
            secret in secret(),
            form in 0..FORMS,
            align in proptest::collection::vec(any::<u8>(), 0..3),
            before in noise(),
            after in noise(),
        ) {
            let s = Scanner::new([secret.as_slice()]);
            let data = carrier(&secret, form, &align, &before, &after);
            prop_assert_eq!(s.found(&data), vec![0]);
        }

        #[test]
        fn any_fragment_of_min_length_is_found(
            secret in secret(),
            form in 0..FORMS,
            from in any::<prop::sample::Index>(),
            len in MIN_FRAGMENT..=64usize,
            align in proptest::collection::vec(any::<u8>(), 0..3),
            before in noise(),
            after in noise(),
        ) {
            let len = len.min(secret.len());
            let start = from.index(secret.len() - len + 1);
            let fragment = &secret[start..start + len];
            let s = Scanner::new([secret.as_slice()]);
            let data = carrier(fragment, form, &align, &before, &after);
            prop_assert_eq!(s.found(&data), vec![0]);
        }

        #[test]
        fn a_value_split_at_any_point_across_two_writes_is_found(
            secret in secret(),
            form in 0..FORMS,
            align in proptest::collection::vec(any::<u8>(), 0..3),
            before in noise(),
            after in noise(),
            at in any::<prop::sample::Index>(),
        ) {
            let s = Scanner::new([secret.as_slice()]);
            let data = carrier(&secret, form, &align, &before, &after);
            let at = at.index(data.len() + 1);
            let mut stream = StreamScan::new();
            let first = stream.write(&s, &data[..at], |_| true);
            let second = first.or_else(|| stream.write(&s, &data[at..], |_| true));
            prop_assert_eq!(second, Some(0));
        }

        #[test]
        fn redaction_leaves_no_fragment_in_any_view(
            secret in secret(),
            forms in proptest::collection::vec(0..FORMS, 1..4),
            align in proptest::collection::vec(any::<u8>(), 0..3),
            noise in proptest::collection::vec(noise(), 4),
        ) {
            let s = Scanner::new([secret.as_slice()]);
            let mut data = noise[0].clone();
            for (i, &f) in forms.iter().enumerate() {
                data.extend(carrier(&secret, f, &align, &noise[(i + 1) % 4], &noise[(i + 2) % 4]));
            }
            let out = s.redact(&data);
            prop_assert!(out.is_some());
            let out = out.unwrap_or_default();
            prop_assert!(s.ranges(&out).is_empty());
            // Independently of the scanner: no 8-byte fragment in the raw or percent-decoded
            // views, nor in lower-case hex.
            let lower = out.to_ascii_lowercase();
            for w in secret.windows(MIN_FRAGMENT) {
                for view in brute_views(&out) {
                    prop_assert!(!view.windows(MIN_FRAGMENT).any(|x| x == w));
                }
                let h = hex(w);
                prop_assert!(!lower.windows(HEX_GRAM).any(|x| x == h.as_bytes()));
            }
        }

        #[test]
        fn scanning_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let s = Scanner::new([KEY]);
            let _ = s.found(&data);
            let _ = s.redact(&data);
            let mut stream = StreamScan::new();
            for chunk in data.chunks(7) {
                let _ = stream.write(&s, chunk, |_| true);
            }
        }
    }
}

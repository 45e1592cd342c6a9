//! Git pack delta format (OBJ_OFS_DELTA / OBJ_REF_DELTA payloads), see
//! gitformat-pack.txt "Deltified representation".

/// Block size used for indexing the base; matches shorter than this are never found,
/// which keeps the index small (len/16 entries) and every copy clearly profitable.
const BLOCK: usize = 16;
/// Largest size a single copy instruction carries; 0x10000 is encoded as size 0 and is
/// what every git version accepts.
const MAX_COPY: usize = 0x10000;
/// Polynomial base for the rolling hash (odd, so multiplication is invertible mod 2^64).
const PRIME: u64 = 0x100_0000_01b3;

fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
fn get_varint(d: &[u8], pos: &mut usize) -> Result<usize, &'static str> {
    let (mut v, mut shift) = (0u64, 0u32);
    loop {
        let b = *d.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        // Reject values whose bits would be shifted out rather than silently wrap.
        let part = (b & 0x7f) as u64;
        if shift >= 64 || (part << shift) >> shift != part {
            return Err("varint overflow");
        }
        v |= part << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return usize::try_from(v).map_err(|_| "varint overflow");
        }
    }
}

/// Direct (non-rolling) hash of one block; the rolling update below must agree with it.
fn block_hash(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |h, &x| {
        h.wrapping_mul(PRIME).wrapping_add(x as u64 + 1)
    })
}

/// Spread the polynomial hash's low-entropy low bits before using them as a table slot.
fn slot(h: u64, mask: usize) -> usize {
    (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

/// Open-addressed table of (hash, base offset); avoids HashMap's SipHash cost, which
/// would dominate for thousands of small files.
struct Index {
    slots: Vec<(u64, u32)>,
    mask: usize,
}

impl Index {
    const EMPTY: u32 = u32::MAX;

    fn new(base: &[u8]) -> Index {
        let blocks = base.len() / BLOCK;
        let cap = (blocks * 2).next_power_of_two().max(16);
        let mut ix = Index {
            slots: vec![(0, Self::EMPTY); cap],
            mask: cap - 1,
        };
        for off in (0..blocks * BLOCK).step_by(BLOCK) {
            let h = block_hash(&base[off..off + BLOCK]);
            let mut s = slot(h, ix.mask);
            // Keep the first occurrence: an earlier identical block is as good as a later one.
            while ix.slots[s].1 != Self::EMPTY && ix.slots[s].0 != h {
                s = (s + 1) & ix.mask;
            }
            if ix.slots[s].1 == Self::EMPTY {
                ix.slots[s] = (h, off as u32);
            }
        }
        ix
    }

    fn find(&self, h: u64) -> Option<usize> {
        let mut s = slot(h, self.mask);
        while self.slots[s].1 != Self::EMPTY {
            if self.slots[s].0 == h {
                return Some(self.slots[s].1 as usize);
            }
            s = (s + 1) & self.mask;
        }
        None
    }
}

fn put_literals(out: &mut Vec<u8>, mut lit: &[u8]) {
    // Insert opcodes are 1..=127; 0 is reserved, so long runs are chunked.
    while !lit.is_empty() {
        let n = lit.len().min(127);
        out.push(n as u8);
        out.extend_from_slice(&lit[..n]);
        lit = &lit[n..];
    }
}

fn put_copies(out: &mut Vec<u8>, mut off: usize, mut len: usize) {
    while len > 0 {
        let n = len.min(MAX_COPY);
        let op_pos = out.len();
        let mut op = 0x80u8;
        out.push(0);
        // n == 0x10000 is encoded by omitting all size bytes; zero bytes are never sent.
        let sz = if n == MAX_COPY { 0 } else { n };
        let fields = (0..4)
            .map(|i| (off >> (8 * i)) as u8)
            .chain((0..3).map(|i| (sz >> (8 * i)) as u8));
        for (i, b) in fields.enumerate().filter(|&(_, b)| b != 0) {
            op |= 1 << i;
            out.push(b);
        }
        out[op_pos] = op;
        off += n;
        len -= n;
    }
}

/// Windows of the target probed before encoding.
const SAMPLES: usize = 16;

/// Whether enough of `target` is found in `base` for a delta to pay: probes
/// [`SAMPLES`] evenly spaced windows of the target, each at every offset within one
/// block (the base is indexed at block boundaries, so a shared run of two blocks or
/// more is found from any start), and asks for half of them to hit: a delta under half
/// the target copies at least half of it. Most files of an export have little in common
/// with their neighbours (a few shared phrases, which a quarter let through); this
/// keeps the cost of learning that to a few hundred lookups instead of a scan of half
/// the file.
fn promising(ix: &Index, base: &[u8], target: &[u8]) -> bool {
    let span = SAMPLES * 2 * BLOCK;
    if target.len() < span * 2 {
        return true;
    }
    let step = (target.len() - 2 * BLOCK) / SAMPLES;
    let hits = (0..SAMPLES)
        .filter(|k| {
            let start = k * step;
            (start..start + BLOCK).any(|i| {
                let window = &target[i..i + BLOCK];
                ix.find(block_hash(window))
                    .is_some_and(|bo| &base[bo..bo + BLOCK] == window)
            })
        })
        .count();
    hits * 2 >= SAMPLES
}

/// Encodes `target` as a git delta against `base`, or None when the delta would not be
/// smaller than `limit` bytes (the caller passes e.g. target.len()/2 so a poor delta is
/// not worth it) or when base is too small (< 16 bytes) to index.
#[cfg(test)]
pub(crate) fn encode(base: &[u8], target: &[u8], limit: usize) -> Option<Vec<u8>> {
    Base::new(base.to_vec()).encode(target, limit)
}

/// A delta base, indexed once for every target compared with it.
pub(crate) struct Base {
    data: Vec<u8>,
    /// `None` when the base cannot be indexed (under one block, or over 4 GiB: copy
    /// offsets are 32-bit in the format).
    ix: Option<Index>,
}

impl Base {
    pub(crate) fn new(data: Vec<u8>) -> Base {
        let ix =
            (data.len() >= BLOCK && data.len() <= u32::MAX as usize).then(|| Index::new(&data));
        Base { data, ix }
    }

    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    /// [`encode`]'s work, against this base.
    pub(crate) fn encode(&self, target: &[u8], limit: usize) -> Option<Vec<u8>> {
        let ix = self.ix.as_ref()?;
        encode_with(ix, &self.data, target, limit)
    }
}

fn encode_with(ix: &Index, base: &[u8], target: &[u8], limit: usize) -> Option<Vec<u8>> {
    // The probe's reasoning holds for deltas under half the target only.
    if limit <= target.len() / 2 && !promising(ix, base, target) {
        return None;
    }
    let mut out = Vec::with_capacity(limit.min(target.len() + 32));
    put_varint(&mut out, base.len());
    put_varint(&mut out, target.len());
    let t = target;
    let top = PRIME.wrapping_pow(BLOCK as u32 - 1);
    let (mut i, mut lit_start) = (0usize, 0usize);
    let mut h = if t.len() >= BLOCK {
        block_hash(&t[..BLOCK])
    } else {
        0
    };
    while i + BLOCK <= t.len() {
        let hit = ix
            .find(h)
            .filter(|&bo| base[bo..bo + BLOCK] == t[i..i + BLOCK]);
        if let Some(mut bo) = hit {
            let mut len = BLOCK;
            while bo + len < base.len() && i + len < t.len() && base[bo + len] == t[i + len] {
                len += 1;
            }
            // Grow backwards into the pending literal run: bytes copied are cheaper than inserted.
            while i > lit_start && bo > 0 && t[i - 1] == base[bo - 1] {
                i -= 1;
                bo -= 1;
                len += 1;
            }
            put_literals(&mut out, &t[lit_start..i]);
            put_copies(&mut out, bo, len);
            i += len;
            lit_start = i;
            if i + BLOCK <= t.len() {
                h = block_hash(&t[i..i + BLOCK]);
            }
        } else {
            if i + BLOCK < t.len() {
                let old = (t[i] as u64 + 1).wrapping_mul(top);
                h = h
                    .wrapping_sub(old)
                    .wrapping_mul(PRIME)
                    .wrapping_add(t[i + BLOCK] as u64 + 1);
            }
            i += 1;
        }
        // Pending literals cost at least their length, so count them for the early bail-out.
        if out.len() + (i - lit_start) >= limit {
            return None;
        }
    }
    put_literals(&mut out, &t[lit_start..]);
    (out.len() < limit).then_some(out)
}

/// Applies a git delta to `base`, as a receiver does: the tests check [`encode`] with
/// it. Errors on any malformed input (bad varint, copy out of base bounds, size
/// mismatch, zero opcode) with a short message.
#[cfg(test)]
pub(crate) fn apply(base: &[u8], delta: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut pos = 0;
    if get_varint(delta, &mut pos)? != base.len() {
        return Err("base size mismatch");
    }
    let size = get_varint(delta, &mut pos)?;
    // Don't trust the header for a huge allocation; a delta can't expand more than 0x10000/2 per byte.
    let mut out = Vec::with_capacity(size.min(delta.len().saturating_mul(MAX_COPY / 2)));
    while pos < delta.len() {
        let op = delta[pos];
        pos += 1;
        let chunk = if op & 0x80 != 0 {
            let (mut off, mut n) = (0usize, 0usize);
            for i in (0..7).filter(|i| op & (1 << i) != 0) {
                let b = *delta.get(pos).ok_or("truncated copy")? as usize;
                pos += 1;
                if i < 4 {
                    off |= b << (8 * i)
                } else {
                    n |= b << (8 * (i - 4))
                }
            }
            let n = if n == 0 { MAX_COPY } else { n };
            off.checked_add(n)
                .and_then(|end| base.get(off..end))
                .ok_or("copy out of base bounds")?
        } else if op != 0 {
            let lit = delta
                .get(pos..pos + op as usize)
                .ok_or("truncated insert")?;
            pos += op as usize;
            lit
        } else {
            return Err("zero opcode");
        };
        if out.len() + chunk.len() > size {
            return Err("result larger than declared");
        }
        out.extend_from_slice(chunk);
    }
    if out.len() != size {
        return Err("result size mismatch");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: deterministic, dependency-free test data.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
        fn css_line(&mut self) -> String {
            const P: [&str; 6] = [
                "color",
                "margin",
                "padding",
                "border",
                "font-size",
                "display",
            ];
            format!(
                ".c{} {{ {}: {}px; }}\n",
                self.below(100000),
                P[self.below(6)],
                self.below(1000)
            )
        }
        /// Text of roughly `n` bytes, as lines.
        fn lines(&mut self, n: usize) -> Vec<String> {
            let (mut v, mut len) = (Vec::new(), 0);
            while len < n {
                let l = self.css_line();
                len += l.len();
                v.push(l);
            }
            v
        }
        /// CSS-like text of about `n` bytes and a copy with every 10th line replaced.
        fn near_copy(&mut self, n: usize) -> (Vec<u8>, Vec<u8>) {
            let mut l = self.lines(n);
            let b = join(&l);
            for i in (0..l.len()).step_by(10) {
                l[i] = self.css_line();
            }
            (b, join(&l))
        }
    }

    fn join(v: &[String]) -> Vec<u8> {
        v.concat().into_bytes()
    }

    fn round_trip(base: &[u8], target: &[u8]) -> Vec<u8> {
        let d = encode(base, target, usize::MAX).expect("delta");
        assert_eq!(apply(base, &d).unwrap(), target);
        d
    }

    #[test]
    fn identical() {
        let b = join(&Rng(1).lines(10_000));
        let d = round_trip(&b, &b);
        assert!(d.len() < 16, "{}", d.len());
        assert_eq!(round_trip(&b, &[]).len(), 3); // empty target: header only
    }

    #[test]
    fn one_line_change() {
        let mut r = Rng(2);
        let mut l = r.lines(10_000);
        let b = join(&l);
        l[100] = r.css_line();
        let d = round_trip(&b, &join(&l));
        assert!(d.len() < 100, "{}", d.len());
    }

    #[test]
    fn insertions_and_deletions() {
        let mut r = Rng(3);
        let b = r.bytes(10_000);
        let ins = r.bytes(333);
        for at in [0, 5_000, 10_000] {
            let mut t = b.clone();
            t.splice(at..at, ins.iter().copied());
            assert!(round_trip(&b, &t).len() < 400);
            let mut t = b.clone();
            t.drain(at.min(9_000)..at.min(9_000) + 1_000);
            assert!(round_trip(&b, &t).len() < 40);
        }
    }

    #[test]
    fn unrelated_data_is_rejected() {
        let mut r = Rng(4);
        let (b, t) = (r.bytes(10_000), r.bytes(10_000));
        assert!(encode(&b, &t, t.len() / 2).is_none());
        let d = round_trip(&b, &t); // still valid without a limit
        assert!(d.len() > t.len());
    }

    #[test]
    fn long_matches_are_split() {
        let b = Rng(5).bytes(300_000);
        let d = round_trip(&b, &b);
        assert!(d.len() < 50, "{}", d.len());
        let mut t = b.clone();
        t[150_000] ^= 1;
        round_trip(&b, &t);
    }

    #[test]
    fn small_inputs() {
        let mut r = Rng(6);
        assert!(encode(b"short", b"short", usize::MAX).is_none());
        let b = r.bytes(16);
        for n in 0..40 {
            let t = r.bytes(n);
            round_trip(&b, &t);
            round_trip(&b, &[&b[..], &t[..]].concat());
        }
    }

    #[test]
    fn random_edits_round_trip() {
        let mut r = Rng(7);
        for _ in 0..200 {
            let n = r.below(3_000) + 16;
            let b = r.bytes(n);
            let mut t = b.clone();
            for _ in 0..r.below(10) {
                let at = r.below(t.len() + 1);
                let n = r.below(200).min(t.len() - at);
                let ins = if r.below(2) == 0 { vec![] } else { r.bytes(n) };
                t.splice(at..at + n * (ins.is_empty() as usize), ins);
            }
            round_trip(&b, &t);
        }
    }

    #[test]
    fn the_probe_gives_up_on_text_that_shares_only_words() {
        let mut r = Rng(11);
        let words = [
            "color", "spacing", "primary", "--token", ": #", "px;\n", "radius", "var(",
        ];
        let mut text = |len: usize| {
            let mut out = Vec::new();
            while out.len() < len {
                out.extend_from_slice(words[r.below(words.len())].as_bytes());
                out.extend_from_slice(format!("{}", r.below(100)).as_bytes());
            }
            out
        };
        let (base, target) = (text(8_000), text(8_000));
        let unrelated = Base::new(base.clone());
        let ix = unrelated.ix.as_ref().unwrap();
        assert!(!promising(ix, &base, &target));
        assert_eq!(unrelated.encode(&target, target.len() / 2), None);

        let (b, t) = Rng(12).near_copy(8_000);
        assert!(promising(&Index::new(&b), &b, &t));
    }

    #[test]
    fn near_copy_is_small() {
        let (b, t) = Rng(8).near_copy(8_000);
        let d = encode(&b, &t, t.len() / 2).expect("delta");
        assert_eq!(apply(&b, &d).unwrap(), t);
        assert!(d.len() * 4 < t.len(), "{} vs {}", d.len(), t.len());
    }

    #[test]
    fn apply_rejects_malformed() {
        let b = Rng(9).bytes(100);
        let good = round_trip(&b, &b[10..90]);
        for n in 0..good.len() {
            assert!(apply(&b, &good[..n]).is_err(), "truncated at {n}");
        }
        assert_eq!(
            apply(&b, &[100, 10, 0x91, 95, 10]),
            Err("copy out of base bounds")
        );
        assert_eq!(apply(&b, &[100, 11, 0x90, 10]), Err("result size mismatch"));
        assert_eq!(
            apply(&b, &[100, 5, 0x90, 10]),
            Err("result larger than declared")
        );
        assert_eq!(apply(&b, &[99, 0]), Err("base size mismatch"));
        assert_eq!(apply(&b, &[100, 1, 0]), Err("zero opcode"));
        assert_eq!(apply(&b, &[100, 1, 2, 7]), Err("truncated insert"));
        assert!(apply(&b, &[0xff; 12]).is_err());
    }
}

//! Hostile input, generated from a seed: what the fuzz tests throw.

/// A small, seeded generator (xorshift64*): a failing run is replayed from
/// the seed it prints.
pub struct Random(pub u64);

impl Random {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Pieces hostile text is made of.
pub const PIECES: &[&str] = &[
    "a",
    "Zoë",
    "\u{0000}",
    "\u{0007}",
    "\u{001b}[31m",
    "\u{200d}",
    "\u{200f}",
    "\u{202e}",
    "\u{feff}",
    "e\u{0301}",
    "😀",
    "\u{10ffff}",
    " ",
    "\t",
    "\n",
    "'",
    "\"",
    "\\",
    "%",
    "<script>",
    "'; DROP TABLE users; --",
    "é@x.io",
    "É@X.IO",
    "+41791234567",
    "CH",
    "ß",
    "İ",
    "user_name",
];

pub fn hostile_text(random: &mut Random) -> String {
    match random.below(10) {
        0 => String::new(),
        1 => "x".repeat(250 + random.below(20)),
        2 => "é".repeat(250 + random.below(20)),
        _ => (0..1 + random.below(4))
            .map(|_| *random.pick(PIECES))
            .collect(),
    }
}

//! Prices: the tick grid, decimals read exactly into ticks, and ticks
//! written back as decimals.

use std::fmt::Write as _;

use crate::engine::{OrderView, Ticks};

/// The price grid: a tick of `mantissa * 10^-scale` (0.01 = 1 × 10^-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickSize {
    mantissa: u64,
    scale: u32,
}

/// The tick as a plain decimal (`0.05`, `1`), as `--tick-size` takes it.
impl std::fmt::Display for TickSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = String::new();
        self.write_price(&mut text, 1);
        f.write_str(text.strip_suffix(".0").unwrap_or(&text))
    }
}

/// The most decimals a tick size may have.
const MAX_SCALE: usize = 12;

impl TickSize {
    /// Parses a positive decimal such as `0.01`, `0.5` or `1`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty() || !digits_ok(whole) || !digits_ok(fraction) {
            return Err(format!(
                "tick size {text:?} is not a plain positive decimal"
            ));
        }
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > MAX_SCALE {
            return Err(format!(
                "tick size {text:?} has too many decimals ({MAX_SCALE} at most)"
            ));
        }
        let mantissa: u64 = format!("{whole}{fraction}")
            .parse()
            .map_err(|_| format!("tick size {text:?} is out of range"))?;
        if mantissa == 0 {
            return Err(format!("tick size {text:?} must be positive"));
        }
        Ok(TickSize {
            mantissa,
            scale: fraction.len() as u32,
        })
    }

    /// The tick as a float, for averages.
    pub fn as_f64(&self) -> f64 {
        self.mantissa as f64 / 10f64.powi(self.scale as i32)
    }

    /// Converts a price written in decimal (a JSON number's text, or a
    /// numeric string's) to ticks, if it is a positive finite multiple of
    /// the tick.
    ///
    /// Read in exact arithmetic, so that every price on the grid is taken,
    /// however many digits it has: through a float, `138017625.33` at a
    /// tick of `0.01`, or `76771.77748507` at `0.00000001` (and one in
    /// seven such prices between 10,000 and 100,000), landed further than
    /// a millionth of a tick from the grid and were refused, as was a
    /// state file holding them; and from 10^14 ticks up, a float took one
    /// price in eleven half a tick off the grid (`42250470938136.685` at
    /// `0.01`) as a neighbouring tick. What a client's float arithmetic
    /// leaves within a millionth of a tick of the grid
    /// (`0.30000000000000004`) is still that tick.
    pub fn ticks_of(&self, text: &str) -> Result<Ticks, &'static str> {
        let text = text.trim();
        match self.decimal_ticks(text) {
            Some(ticks) => ticks,
            // Not a plain decimal: negative, `NaN`, `inf`.
            None => self.to_ticks(text.parse().map_err(|_| "must be a number")?),
        }
    }

    /// The ticks of a plain decimal (see [`plain_decimal`]), in exact
    /// arithmetic: its nearest tick if it lies within a millionth of a
    /// tick of it, as [`to_ticks`](Self::to_ticks) allows; `None` if the
    /// text is no plain decimal.
    fn decimal_ticks(&self, text: &str) -> Option<Result<Ticks, &'static str>> {
        let Decimal {
            mut significand,
            power,
            ..
        } = plain_decimal(text)?;
        if significand == 0 {
            return Some(Err("must be positive"));
        }
        // ticks = value / (mantissa * 10^-scale) = numerator / denominator
        let mantissa = u128::from(self.mantissa);
        let (numerator, denominator) = match power + i64::from(self.scale) {
            shift if shift >= 0 => {
                match ten_to(shift).and_then(|unit| significand.checked_mul(unit)) {
                    Some(numerator) => (numerator, mantissa),
                    // 2^128 over a mantissa below 2^64: past every price.
                    None => return Some(Err(ABOVE_MAX_TICKS)),
                }
            }
            shift => {
                // Where the denominator passes u128, the price is below
                // one tick; its last digits go until it fits, which moves
                // it far less than the millionth of a tick allowed.
                let mut down = -shift;
                loop {
                    match ten_to(down).and_then(|unit| unit.checked_mul(mantissa)) {
                        Some(denominator) => break (significand, denominator),
                        None if significand < 10 => return Some(Err(BELOW_ONE_TICK)),
                        None => (significand, down) = (significand / 10, down - 1),
                    }
                }
            }
        };
        let (below, rest) = divide(numerator, denominator);
        let (nearest, off) = if rest >= denominator - rest {
            (below + 1, denominator - rest)
        } else {
            (below, rest)
        };
        if nearest == 0 {
            return Some(Err(BELOW_ONE_TICK));
        }
        if nearest > MAX_PRICE_TICKS {
            return Some(Err(ABOVE_MAX_TICKS));
        }
        if off
            .checked_mul(1_000_000)
            .is_none_or(|off| off > denominator)
        {
            return Some(self.tick_read_as_the_same_double(text, nearest));
        }
        Some(Ok(nearest as Ticks))
    }

    /// The tick next to `nearest` whose price reads as the same double as
    /// `text`, if `text` is that double's shortest digits. A float client
    /// writes a double so, and past 2^50 ticks those may name no tick (at
    /// a tick of 0.25, `562949953421312.25` is written `562949953421312.2`,
    /// which was refused); they name the double, and it is one tick's.
    /// Digits past the shortest were chosen, not a float's: off the grid
    /// they stay refused (`42250470938136.685` at 0.01 is half a cent).
    fn tick_read_as_the_same_double(
        &self,
        text: &str,
        nearest: u128,
    ) -> Result<Ticks, &'static str> {
        const OFF_THE_GRID: &str = "must be a multiple of the tick size";
        let double = text.parse::<f64>().map_err(|_| OFF_THE_GRID)?;
        // Shortest digits are not one string (`...312.2` and `...312.3`
        // both read as `...312.25`): what counts is how many there are.
        let digits = |text: &str| plain_decimal(text).map(|d| significant_digits(d.significand));
        if digits(text).is_none_or(|n| Some(n) > digits(&format!("{double:e}"))) {
            return Err(OFF_THE_GRID);
        }
        let mut price = String::new();
        [nearest, nearest - 1, nearest + 1]
            .into_iter()
            .filter(|&ticks| (1..=MAX_PRICE_TICKS).contains(&ticks))
            .find(|&ticks| {
                price.clear();
                self.write_price(&mut price, ticks as Ticks);
                price.parse::<f64>() == Ok(double)
            })
            .map(|ticks| ticks as Ticks)
            .ok_or(OFF_THE_GRID)
    }

    /// Converts a wire price to ticks, if it is a positive finite multiple
    /// of the tick (within a millionth of a tick: see [`ticks_of`](Self::ticks_of)).
    pub fn to_ticks(&self, price: f64) -> Result<Ticks, &'static str> {
        if !price.is_finite() {
            return Err("must be a finite number");
        }
        if price <= 0.0 {
            return Err("must be positive");
        }
        let units = price * 10f64.powi(self.scale as i32) / self.mantissa as f64;
        let ticks = units.round();
        if ticks < 1.0 {
            return Err(BELOW_ONE_TICK);
        }
        if ticks > MAX_PRICE_TICKS as f64 {
            return Err(ABOVE_MAX_TICKS);
        }
        // Decimal inputs such as 100.01 are not exact in binary; accept what
        // is within a millionth of a tick of the grid.
        if (units - ticks).abs() > 1e-6 {
            return Err("must be a multiple of the tick size");
        }
        Ok(ticks as Ticks)
    }

    /// Writes `ticks` as a JSON decimal number: `100.0`, `100.01`.
    pub fn write_price(&self, out: &mut String, ticks: Ticks) {
        let scaled = ticks as u128 * self.mantissa as u128;
        let unit = 10u128.pow(self.scale);
        let (whole, fraction) = (scaled / unit, scaled % unit);
        let _ = write!(out, "{whole}.");
        if self.scale == 0 || fraction == 0 {
            out.push('0');
            return;
        }
        // The fraction's `scale` digits (12 at most), zero-padded, without
        // trailing zeros; on the stack, since a listing writes one a order.
        let mut digits = [b'0'; MAX_SCALE];
        let width = self.scale as usize;
        let mut rest = fraction;
        for digit in digits[..width].iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let end = width
            - digits[..width]
                .iter()
                .rev()
                .take_while(|&&d| d == b'0')
                .count();
        out.push_str(std::str::from_utf8(&digits[..end]).expect("ASCII digits"));
    }

    /// Writes a quantity-weighted average price: `0` before any fill.
    pub(super) fn write_average(&self, out: &mut String, order: &OrderView) {
        if order.filled == 0 {
            out.push('0');
        } else if order.notional.is_multiple_of(order.filled as u128) {
            self.write_price(out, (order.notional / order.filled as u128) as Ticks);
        } else {
            let value = self.average(order.notional, order.filled);
            out.push_str(&serde_json::to_string(&value).unwrap_or_else(|_| "0".into()));
        }
    }

    /// `notional` ticks over `filled` as a price: the double nearest the
    /// exact `notional * mantissa / (filled * 10^scale)` (so 4 at 100.02
    /// and 6 at 100.04 average `100.032`, not `100.03200000000001` as
    /// two roundings made it). Powers of two divide a double exactly, so
    /// where the odd parts are exact (below 2^53) one division rounds
    /// correctly; past that, [`nearest_quotient`](Self::nearest_quotient).
    fn average(&self, notional: u128, filled: u64) -> f64 {
        const EXACT: u128 = 1 << 53;
        let exact = notional
            .checked_mul(u128::from(self.mantissa))
            .zip(5u128.checked_pow(self.scale))
            .and_then(|(numerator, fives)| {
                let twos_up = numerator.trailing_zeros() as i32;
                let twos_down = filled.trailing_zeros() as i32 + self.scale as i32;
                let denominator =
                    u128::from(filled >> filled.trailing_zeros()).checked_mul(fives)?;
                let numerator = numerator >> twos_up;
                (numerator < EXACT && denominator < EXACT)
                    .then(|| numerator as f64 / denominator as f64 * 2f64.powi(twos_up - twos_down))
            });
        exact.unwrap_or_else(|| self.nearest_quotient(notional, filled))
    }

    /// The double nearest `notional * mantissa / (filled * 10^scale)`,
    /// from its decimal digits. Three roundings (`notional as f64 /
    /// filled as f64 * tick`) were one unit in the last place off in
    /// about 1 in 200 averages of fills near 10^9 at 10,000 to 100,000.
    ///
    /// `notional / filled` is written out to 60 significant digits, then
    /// multiplied by the mantissa, digit by digit. If the division did not
    /// end there, a last digit 1 stands for the rest. The quotient's
    /// denominator is below 2^104 and its numerator below 2^148 (2^52
    /// ticks by 2^32 filled, by the mantissa), so it lies at least 2^-158
    /// of itself from any point halfway between two doubles; the rest is
    /// below 10^-59 of it, so the double nearest the digits is the
    /// quotient's. (The mantissa's common factor with `filled` is taken
    /// out first, so that a quotient that ends only once multiplied, and
    /// may be such a halfway point, ends in the division already.)
    fn nearest_quotient(&self, notional: u128, filled: u64) -> f64 {
        const SIGNIFICANT: usize = 60;
        let common = gcd(self.mantissa, filled);
        let mantissa = u128::from(self.mantissa / common);
        let filled = u128::from(filled / common);
        // Digit values, most significant first: the whole part (39
        // digits at most), then the fraction (up to 20 zeros, then
        // digits up to SIGNIFICANT in all).
        let mut digits = [0u8; 128];
        let mut len = 0;
        // `divide` where it can: in a listing of many such orders, u128
        // divisions, library calls, would add up.
        let (mut whole, mut rest) = divide(notional, filled);
        while whole > 0 {
            let (higher, digit) = divide(whole, 10);
            digits[len] = digit as u8;
            whole = higher;
            len += 1;
        }
        digits[..len].reverse();
        let mut significant = len;
        let mut fraction = 0;
        while rest != 0 && significant < SIGNIFICANT {
            // Below filled * 10 < 2^68.
            let (digit, after) = divide(rest * 10, filled);
            digits[len] = digit as u8;
            rest = after;
            if significant > 0 || digits[len] != 0 {
                significant += 1;
            }
            len += 1;
            fraction += 1;
        }
        let mut carry = 0u128;
        for digit in digits[..len].iter_mut().rev() {
            let (higher, lowest) = divide(carry + u128::from(*digit) * mantissa, 10);
            *digit = lowest as u8;
            carry = higher;
        }
        let mut text = String::with_capacity(len + 48);
        if carry > 0 {
            let _ = write!(text, "{carry}");
        }
        text.extend(digits[..len].iter().map(|&d| char::from(b'0' + d)));
        if rest != 0 {
            text.push('1');
            fraction += 1;
        }
        if text.is_empty() {
            return 0.0;
        }
        let _ = write!(text, "e-{}", fraction + self.scale as usize);
        text.parse().unwrap_or(f64::NAN)
    }
}

/// The greatest common divisor (`b` when `a` is 0).
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while a != 0 {
        (a, b) = (b % a, a);
    }
    b
}

/// How many significant digits a decimal's significand has, trailing
/// zeros not counted (`100.0100000` has 5).
fn significant_digits(mut significand: u128) -> u32 {
    while significand != 0 && significand.is_multiple_of(10) {
        significand /= 10;
    }
    significand.checked_ilog10().map_or(0, |log| log + 1)
}

/// A plain decimal read exactly as far as a `u128` holds its digits:
/// `value = significand * 10^power`, or a little more when
/// `fraction_cut`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Decimal {
    /// The leading digits: all of them, but past about 38 significant
    /// digits, where `u128` ends.
    pub significand: u128,
    /// The power of ten `significand` counts in.
    pub power: i64,
    /// Whether fraction digits were left out past `significand`. Trailing
    /// zeros are dropped first, so one of them was not zero: the value is
    /// then no whole number, and no price on the grid (whose digits fit).
    pub fraction_cut: bool,
}

impl Decimal {
    /// The whole number it is, or `None` if it is none. Past about 38
    /// digits, whose last whole digits were cut, it is said to be its
    /// leading digits' worth (or `u128::MAX`): a little less than it is,
    /// far past every bound either way.
    pub fn whole(&self) -> Option<u128> {
        if self.fraction_cut {
            return None;
        }
        if self.significand == 0 {
            return Some(0);
        }
        if self.power >= 0 {
            let scaled = ten_to(self.power).and_then(|unit| self.significand.checked_mul(unit));
            return Some(scaled.unwrap_or(u128::MAX));
        }
        // A power of ten past u128 is more than any significand.
        let (quotient, rest) = divide(self.significand, ten_to(-self.power)?);
        (rest == 0).then_some(quotient)
    }
}

/// A plain decimal, `[+]digits[.digits][(e|E)[+-]digits]` (a JSON number
/// without a minus, or `.5` and `5.` as strings carry them), read
/// exactly whatever its number of digits (see [`Decimal`]); `None` for
/// anything else.
///
/// Reading it whole matters: a float, or a reader that gave up past
/// `u128` and fell back to one, took `0.99999999999999999999999999999999999999999`
/// as the quantity 1, and a cent price written with 30 more trailing
/// zeros as the nearest tick.
pub(super) fn plain_decimal(text: &str) -> Option<Decimal> {
    let text = text.strip_prefix('+').unwrap_or(text);
    let (number, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], exponent(&text[at + 1..])?),
        None => (text, 0),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = || whole.bytes().chain(fraction.bytes());
    if (whole.is_empty() && fraction.is_empty()) || !digits().all(|d| d.is_ascii_digit()) {
        return None;
    }
    let fraction = fraction.trim_end_matches('0');
    let mut decimal = Decimal {
        significand: 0,
        power: exponent,
        fraction_cut: false,
    };
    // Once a digit does not fit, none after it is taken: a smaller one
    // would fit, in the wrong place.
    let mut full = false;
    for (at, digit) in whole.bytes().chain(fraction.bytes()).enumerate() {
        let in_fraction = at >= whole.len();
        let more = (decimal.significand.checked_mul(10))
            .and_then(|significand| significand.checked_add(u128::from(digit - b'0')))
            .filter(|_| !full);
        match (more, in_fraction) {
            (Some(significand), _) => {
                decimal.significand = significand;
                decimal.power -= i64::from(in_fraction);
            }
            (None, false) => {
                full = true;
                decimal.power += 1;
            }
            (None, true) => {
                decimal.fraction_cut = true;
                break;
            }
        }
    }
    Some(decimal)
}

/// An exponent's digits, `[+-]digits`, held within 2^40 either way: far
/// past every bound, with room left to count a number's digits in.
fn exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty() || !digits.bytes().all(|d| d.is_ascii_digit()) {
        return None;
    }
    let value = (digits.bytes()).fold(0i64, |value, d| {
        (value * 10 + i64::from(d - b'0')).min(1 << 40)
    });
    Some(if negative { -value } else { value })
}

/// Quotient and remainder, in 64-bit arithmetic where both fit: a
/// division of `u128`s is a library call, several times slower, and
/// prices and quantities almost always fit.
fn divide(numerator: u128, denominator: u128) -> (u128, u128) {
    match (u64::try_from(numerator), u64::try_from(denominator)) {
        (Ok(n), Ok(d)) => (u128::from(n / d), u128::from(n % d)),
        _ => (numerator / denominator, numerator % denominator),
    }
}

/// `10^n`, if it fits `u128`.
fn ten_to(n: i64) -> Option<u128> {
    u32::try_from(n).ok().and_then(|n| 10u128.checked_pow(n))
}

/// The highest price in ticks: 2^52, past which a price's float (in
/// averages and the original's state file) no longer holds every tick
/// of a tick up to 2 (of a coarser tick, from lower down).
const MAX_PRICE_TICKS: u128 = 1 << 52;

/// Why a positive price nearer 0 than one tick is refused.
const BELOW_ONE_TICK: &str = "must be at least the tick size";

/// Why a price past [`MAX_PRICE_TICKS`] is refused.
const ABOVE_MAX_TICKS: &str = "must be at most 2^52 ticks";

#[cfg(test)]
mod tests {
    use super::*;

    /// `numerator / denominator` as a double, the slow way: 100 exact
    /// decimals read by the float parser (which rounds correctly).
    fn nearest_double(numerator: u128, denominator: u128) -> f64 {
        let mut text = format!("{}.", numerator / denominator);
        let mut remainder = numerator % denominator;
        for _ in 0..100 {
            remainder *= 10;
            text.push(char::from(b'0' + (remainder / denominator) as u8));
            remainder %= denominator;
        }
        text.parse().unwrap()
    }

    #[test]
    fn a_floats_shortest_digits_name_the_tick_whose_double_they_read_as() {
        let quarter = TickSize::parse("0.25").unwrap();
        let tick = 2_251_799_813_685_249; // 562949953421312.25
        assert_eq!(quarter.ticks_of("562949953421312.2"), Ok(tick));
        assert_eq!(quarter.ticks_of("562949953421312.25"), Ok(tick));
        // Reads as 562949953421312.375, no tick's double.
        assert_eq!(
            quarter.ticks_of("562949953421312.4"),
            Err("must be a multiple of the tick size")
        );
        // Where doubles are finer than the tick, off the grid stays off.
        let cent = TickSize::parse("0.01").unwrap();
        assert_eq!(
            cent.ticks_of("100.015"),
            Err("must be a multiple of the tick size")
        );
    }

    proptest::proptest! {
        /// What a float client sends back: the shortest digits of the
        /// double a price reads as.
        #[test]
        fn every_tick_read_back_from_a_floats_shortest_digits_is_that_tick(
            ticks in 1u64..=1 << 52,
            tick in proptest::sample::select(vec!["1", "5", "0.5", "0.01", "0.05", "0.25", "0.00000001", "2.5"]),
        ) {
            let grid = TickSize::parse(tick).unwrap();
            let mut written = String::new();
            grid.write_price(&mut written, ticks as Ticks);
            let shortest = written.parse::<f64>().unwrap().to_string();
            proptest::prop_assert_eq!(grid.ticks_of(&shortest), Ok(ticks as Ticks), "{}", shortest);
        }
    }

    #[test]
    fn an_average_is_the_double_nearest_the_exact_mean() {
        let cent = TickSize::parse("0.01").unwrap();
        // 4 at 100.02 and 6 at 100.04: 100.032 exactly.
        assert_eq!(cent.average(4 * 10_002 + 6 * 10_004, 10), 100.032);
        assert_eq!(cent.average(3 * 10_000 + 10_001, 4).to_string(), "100.0025");
    }

    #[test]
    fn an_average_past_the_fast_path_is_still_the_nearest_double() {
        let cent = TickSize::parse("0.01").unwrap();
        // Sells of 32,500,411 at 97254.72 and 962,951,411 at 97255.41,
        // bought whole: three roundings made it 97255.38747225623.
        let notional = 32_500_411 * 9_725_472 + 962_951_411 * 9_725_541;
        let filled = 32_500_411 + 962_951_411;
        assert!(notional * 10_000 > 1 << 53, "past the fast path");
        let average = cent.average(notional, filled);
        assert_eq!(average.to_string(), "97255.38747225622");
        assert_eq!(average, nearest_double(notional, u128::from(filled) * 100));
        // Exactly halfway between two doubles (2^53 + 3): to the even one.
        // Divided before it is multiplied, the quotient never ends, and
        // its digits fell just short of the halfway point.
        let three = TickSize::parse("3").unwrap();
        assert_eq!(three.average((1 << 53) + 3, 3), ((1u64 << 53) + 4) as f64);
    }

    proptest::proptest! {
        /// At sizes past the fast path: prices to 2^52 ticks, fills to
        /// the largest quantity.
        #[test]
        fn large_averages_are_correctly_rounded(
            fills in proptest::collection::vec((1u64..=1 << 52, 1u64..=u64::from(u32::MAX)), 1..5),
            tick in proptest::sample::select(vec!["1", "3", "5", "0.5", "0.01", "0.05", "0.25", "0.00000001", "0.000000000001", "2.5"]),
        ) {
            let grid = TickSize::parse(tick).unwrap();
            let notional: u128 = fills.iter().map(|&(p, q)| u128::from(p) * u128::from(q)).sum();
            let filled: u64 = fills.iter().map(|&(_, q)| q).sum();
            let exact = nearest_double(
                notional * u128::from(grid.mantissa),
                u128::from(filled) * 10u128.pow(grid.scale),
            );
            proptest::prop_assert_eq!(grid.average(notional, filled), exact);
        }
    }

    proptest::proptest! {
        #[test]
        fn averages_are_correctly_rounded(
            ticks in proptest::collection::vec((1u64..1_000_000, 1u64..10_000), 1..6),
            tick in proptest::sample::select(vec!["1", "0.5", "0.01", "0.05", "0.25", "0.00000001", "2.5"]),
        ) {
            let grid = TickSize::parse(tick).unwrap();
            let notional: u128 = ticks.iter().map(|&(p, q)| u128::from(p) * u128::from(q)).sum();
            let filled: u64 = ticks.iter().map(|&(_, q)| q).sum();
            let exact = nearest_double(
                notional * u128::from(grid.mantissa),
                u128::from(filled) * 10u128.pow(grid.scale),
            );
            proptest::prop_assert_eq!(grid.average(notional, filled), exact);
        }
    }

    proptest::proptest! {
        /// Against the slow way (`format!` of the zero-padded fraction),
        /// and read back to the same ticks, at every grid up to 12 decimals.
        #[test]
        fn prices_are_written_as_formatting_writes_them(
            ticks in 1u64..=1 << 52,
            tick in proptest::sample::select(vec!["1", "0.5", "0.01", "0.25", "0.001", "0.00000001", "0.000000000001", "2.5"]),
        ) {
            let grid = TickSize::parse(tick).unwrap();
            let mut written = String::new();
            grid.write_price(&mut written, ticks as Ticks);
            let scaled = u128::from(ticks) * u128::from(grid.mantissa);
            let unit = 10u128.pow(grid.scale);
            let (whole, fraction) = (scaled / unit, scaled % unit);
            let slow = if grid.scale == 0 || fraction == 0 {
                format!("{whole}.0")
            } else {
                let digits = format!("{:0width$}", fraction, width = grid.scale as usize);
                format!("{whole}.{}", digits.trim_end_matches('0'))
            };
            proptest::prop_assert_eq!(&written, &slow);
            proptest::prop_assert_eq!(grid.ticks_of(&written), Ok(ticks as Ticks));
        }
    }
}

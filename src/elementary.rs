//! `exp`, `tanh` and `ln(1 + x)` for `f32` in plain arithmetic, so that the loops over a batch
//! vectorize.
//!
//! `f32::exp` and `f32::tanh` are calls into the C library, one element at a time: LLVM cannot
//! vectorize them. A network with `Tanh`, `Sigmoid` or `Gelu` activations spent most of its
//! step there (README, Performance). These are branch-free (both sides of a choice are computed
//! and one is selected), so they vectorize inside the crate's elementwise loops. `f64` keeps the
//! standard functions: it serves gradient checks, where accuracy matters more than speed.
//!
//! Accuracy, against `f64` rounded to `f32`, on every 1009th `f32` of their ranges (the unit
//! tests below): `exp` within 1 unit in the last place (ulp) where its result is normal, `tanh`
//! within 2, `ln(1 + x)` on [0, 1] and `softplus` from it within 3 (the rounding of `x/(2 + x)`
//! carries into the result; the standard functions are within 1, at a call each).

use crate::Float;

/// `e^x` in `T`: [`exp_f32`] for `f32`, the standard function for `f64`.
#[inline(always)]
pub(crate) fn exp<T: Float>(x: T) -> T {
    if T::BYTES == 4 { T::lit(f64::from(exp_f32(x.as_f64() as f32))) } else { x.exp() }
}

/// `tanh x` in `T`: [`tanh_f32`] for `f32`, the standard function for `f64`.
#[inline(always)]
pub(crate) fn tanh<T: Float>(x: T) -> T {
    if T::BYTES == 4 { T::lit(f64::from(tanh_f32(x.as_f64() as f32))) } else { x.tanh() }
}

/// `ln(1 + x)` in `T` for `x` in [0, 1]: [`ln_1p_f32`] for `f32`, the standard function for
/// `f64`.
#[inline(always)]
pub(crate) fn ln_1p<T: Float>(x: T) -> T {
    if T::BYTES == 4 { T::lit(f64::from(ln_1p_f32(x.as_f64() as f32))) } else { x.ln_1p() }
}

/// `softplus(z) = ln(1 + e^z)` in `T`, as `max(z, 0) + ln(1 + e^(−|z|))` so that nothing
/// overflows: for `f32` with [`exp_f32`] and [`ln_1p_f32`], which vectorize; for `f64` with the
/// standard functions.
#[inline(always)]
pub(crate) fn softplus<T: Float>(z: T) -> T {
    softplus_from(z, exp(-z.abs()))
}

/// [`softplus`] of `z` given `e = e^(−|z|)`, for a caller that needs `e` for more (the
/// sigmoid).
#[inline(always)]
pub(crate) fn softplus_from<T: Float>(z: T, e: T) -> T {
    z.max(T::zero()) + ln_1p(e)
}

/// `ln(1 + x)` for `f32` and `x` in [0, 1] (what [`softplus`] asks of it), with no loss of
/// relative accuracy near 0: `ln(1 + x) = 2·atanh(u)` with `u = x/(2 + x)` in [0, 1/3], and
/// `atanh u = u·(1 + u²/3 + u⁴/5 + … + u¹⁴/15)` (the next term is below 2e-8 of the result).
/// NaN gives NaN.
#[inline(always)]
pub(crate) fn ln_1p_f32(x: f32) -> f32 {
    let u = x / (2.0 + x);
    let s = u * u;
    let series = 1.0
        + s * (1.0 / 3.0
            + s * (1.0 / 5.0
                + s * (1.0 / 7.0
                    + s * (1.0 / 9.0 + s * (1.0 / 11.0 + s * (1.0 / 13.0 + s * (1.0 / 15.0)))))));
    2.0 * u * series
}

/// `e^x` for `f32`: `x = n·ln 2 + r` with `n` an integer and `|r| ≤ ln 2 / 2`, then
/// `e^x = 2ⁿ·e^r`, with `e^r` from its Taylor series to `r⁷` (the next term is below 6e-9 of
/// the result). `2ⁿ` is applied as two factors, so that each is a normal number up to
/// `n = 129` (the result is `+∞`). NaN gives NaN, `−∞` 0 and `+∞` `+∞`.
///
/// **0 where the result would not be a normal number** (`x` below [`EXP_LOW`], −87.33654),
/// and no subnormal number is formed on the way: x86 CPUs take a microcode assist for every
/// instruction that produces one, and a sigmoid of pre-activations in the hundreds (raw
/// features) spent almost all of a training step there (README, Performance).
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    // ln 2 to 12 bits, so that `n·LN2_HIGH` is exact for |n| < 2¹², and the rest of it.
    const LN2_HIGH: f32 = 2839.0 / 4096.0;
    const LN2_LOW: f32 = (std::f64::consts::LN_2 - 2839.0 / 4096.0) as f32;
    // 1.5·2²³: adding it to a number of magnitude below 2²² rounds that number to an integer,
    // which then sits in the low bits of the sum.
    const ROUNDER: f32 = 12_582_912.0;
    let below = x < EXP_LOW;
    let x = x.clamp(EXP_LOW, 89.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUNDER;
    let n = shifted - ROUNDER;
    let r = (x - n * LN2_HIGH) - n * LN2_LOW;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let k = (shifted.to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32);
    let half = k >> 1;
    let power = |e: i32| f32::from_bits((e.wrapping_add(127) << 23) as u32);
    let y = p * power(half) * power(k.wrapping_sub(half));
    if below { 0.0 } else { y }
}

/// The lowest `x` for which [`exp_f32`] is not 0: just above `ln` of the smallest normal `f32`
/// (−87.336544), so that `e^x` computed there is still normal after rounding.
pub(crate) const EXP_LOW: f32 = -87.336_54;

/// `tanh x` for `f32`: for `|x| < 0.3` its Taylor series to `x¹³` (the next term is below 1e-10
/// of the result), beyond it `1 − 2/(e^(2|x|) + 1)`, with the sign of `x`. `±∞` gives `±1`,
/// NaN NaN, and `−0` `−0`.
#[inline(always)]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let s = a * a;
    let series = a
        * (1.0
            + s * (-1.0 / 3.0
                + s * (2.0 / 15.0
                    + s * (-17.0 / 315.0
                        + s * (62.0 / 2835.0 + s * (-1382.0 / 155_925.0 + s * (21_844.0 / 6_081_075.0)))))));
    let far = 1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0);
    let t = if a < 0.3 { series } else { far };
    t.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `v` as an integer in the order of the floats: adjacent floats differ by 1, across zero
    /// too (where `−0` and `+0` are both 0).
    fn key(v: f32) -> i32 {
        let bits = v.to_bits() as i32;
        if bits < 0 { i32::MIN - bits } else { bits }
    }

    fn from_key(k: i32) -> f32 {
        f32::from_bits(if k < 0 { (i32::MIN - k) as u32 } else { k as u32 })
    }

    /// Distance in units in the last place between `got` and the `f64` value `want` rounded to
    /// `f32` (0 when both are the same infinity, or both NaN).
    fn ulps(got: f32, want: f64) -> u32 {
        let want = want as f32;
        if got.is_nan() && want.is_nan() || got == want {
            return 0;
        }
        key(got).abs_diff(key(want))
    }

    /// Floats between two sampled in the sweeps: a prime, so the samples fall on every pattern
    /// of low bits.
    const STRIDE: usize = 1009;

    /// Every `STRIDE`th `f32` from `low` to `high`, and `high`.
    fn sweep(low: f32, high: f32) -> impl Iterator<Item = f32> {
        (key(low)..=key(high)).step_by(STRIDE).map(from_key).chain(std::iter::once(high))
    }

    #[test]
    fn exp_is_within_1_ulp_of_f64_where_the_result_is_normal() {
        let mut worst = (0, 0.0f32);
        for x in sweep(-87.3, 88.7) {
            let u = ulps(exp_f32(x), f64::from(x).exp());
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 1, "{} ulp at x = {}", worst.0, worst.1);
    }

    #[test]
    fn exp_saturates_and_propagates_like_the_standard_one() {
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert_eq!(exp_f32(88.72), 88.72f32.exp());
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-104.0), 0.0);
        assert!(exp_f32(f32::NAN).is_nan());
        // Below the normal range the result is 0, never a subnormal; from EXP_LOW up it is
        // normal and within 1 ulp.
        for x in sweep(-150.0, -87.0).chain([EXP_LOW, f32::from_bits(EXP_LOW.to_bits() + 1)]) {
            let y = exp_f32(x);
            if x < EXP_LOW {
                assert_eq!(y.to_bits(), 0, "x = {x}: {y}");
            } else {
                assert!(y.is_normal() && ulps(y, f64::from(x).exp()) <= 1, "x = {x}: {y}");
            }
        }
        assert!(f64::from(EXP_LOW) > f64::from(f32::MIN_POSITIVE).ln());
    }

    #[test]
    fn ln_1p_and_softplus_are_within_3_ulp_of_f64() {
        let mut worst = (0, 0.0f32);
        for x in sweep(0.0, 1.0) {
            let u = ulps(ln_1p_f32(x), f64::from(x).ln_1p());
            if u > worst.0 {
                worst = (u, x);
            }
        }
        assert!(worst.0 <= 3, "ln_1p: {} ulp at x = {}", worst.0, worst.1);
        assert_eq!(ln_1p_f32(0.0), 0.0);
        assert_eq!(ln_1p_f32(1e-30), 1e-30);
        assert!(ln_1p_f32(f32::NAN).is_nan());
        let mut worst = (0, 0.0f32);
        for z in sweep(-87.0, 88.0) {
            let want = f64::from(z).max(0.0) + (-f64::from(z).abs()).exp().ln_1p();
            let u = ulps(softplus(z), want);
            if u > worst.0 {
                worst = (u, z);
            }
        }
        assert!(worst.0 <= 3, "softplus: {} ulp at z = {}", worst.0, worst.1);
        assert_eq!(softplus(f32::INFINITY), f32::INFINITY);
        assert_eq!(softplus(f32::NEG_INFINITY), 0.0);
        assert_eq!(softplus(1e4f32), 1e4);
        assert!(softplus(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_is_within_2_ulp_of_f64_and_keeps_its_symmetry() {
        let mut worst = (0, 0.0f32);
        for x in sweep(-12.0, 12.0) {
            let u = ulps(tanh_f32(x), f64::from(x).tanh());
            if u > worst.0 {
                worst = (u, x);
            }
            assert_eq!(tanh_f32(-x).to_bits(), (-tanh_f32(x)).to_bits(), "odd at {x}");
        }
        assert!(worst.0 <= 2, "{} ulp at x = {}", worst.0, worst.1);
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_f32(50.0), 1.0);
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh_f32(1e-30), 1e-30);
        assert!(tanh_f32(f32::NAN).is_nan());
    }
}

//! Key distributions for `-r N`: uniform (redis-benchmark's), or Zipf, the
//! skewed popularity of real cache workloads (`--key-pattern zipf:0.99`).
//!
//! The Zipf sampler is Hörmann and Derflinger's rejection-inversion method
//! ("Rejection-inversion to generate variates from monotone discrete
//! distributions", 1996): O(1) setup and a few floating-point operations per
//! sample for any keyspace size and any exponent s > 0, so it is as cheap
//! as the uniform path and needs no table.

use std::str::FromStr;

use crate::command::Rng;

/// How random keys are drawn from `[0, N)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyPattern {
    /// Every key equally likely (redis-benchmark's `-r`).
    Uniform,
    /// Key of popularity rank k has probability ∝ 1 / k^s.
    Zipf(f64),
}

impl FromStr for KeyPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "uniform" {
            return Ok(KeyPattern::Uniform);
        }
        let exponent = s
            .strip_prefix("zipf:")
            .and_then(|e| e.parse::<f64>().ok())
            .ok_or_else(|| format!("invalid key pattern `{s}` (use uniform or zipf:S, e.g. zipf:0.99)"))?;
        if !(exponent.is_finite() && exponent > 0.0) {
            return Err(format!("zipf exponent must be positive (got {exponent})"));
        }
        Ok(KeyPattern::Zipf(exponent))
    }
}

/// Draws key numbers for one client thread.
#[derive(Debug, Clone)]
pub enum KeyGen {
    Uniform(u64),
    Zipf(Zipf),
}

impl KeyGen {
    /// A generator of keys in `[0, space)` following `pattern`.
    pub fn new(pattern: KeyPattern, space: u64) -> KeyGen {
        match pattern {
            KeyPattern::Uniform => KeyGen::Uniform(space.max(1)),
            KeyPattern::Zipf(s) => KeyGen::Zipf(Zipf::new(space.max(1), s)),
        }
    }

    /// The next key number.
    #[inline]
    pub fn next(&self, rng: &mut Rng) -> u64 {
        match self {
            KeyGen::Uniform(space) => rng.next_u64() % space,
            // Rank 1 is key 0, rank 2 key 1, …: the server hashes keys, so
            // popular keys being numerically close changes nothing.
            KeyGen::Zipf(z) => z.sample(rng) - 1,
        }
    }
}

/// Zipf over ranks `1..=n` with exponent `s` (rejection-inversion).
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
}

impl Zipf {
    /// Set-up for `n` ranks and exponent `s` > 0.
    pub fn new(n: u64, s: f64) -> Zipf {
        let mut z = Zipf {
            n: n as f64,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            threshold: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.threshold = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// One rank in `1..=n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let uniform = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let u = self.h_integral_n + uniform * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    /// h(x) = x^-s, the (unnormalised) probability mass.
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// H(x), an antiderivative of h: (x^(1-s) - 1) / (1 - s), or ln x at s = 1.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// ln(1 + x) / x, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (e^x - 1) / x, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse() {
        assert_eq!("uniform".parse::<KeyPattern>(), Ok(KeyPattern::Uniform));
        assert_eq!("zipf:0.99".parse::<KeyPattern>(), Ok(KeyPattern::Zipf(0.99)));
        assert!("zipf".parse::<KeyPattern>().is_err());
        assert!("zipf:-1".parse::<KeyPattern>().is_err());
        assert!("gauss".parse::<KeyPattern>().is_err());
    }

    #[test]
    fn zipf_samples_stay_in_range_and_follow_the_power_law() {
        for s in [0.5, 0.99, 1.0, 1.5] {
            let z = Zipf::new(1000, s);
            let mut rng = Rng::new(42);
            let mut counts = vec![0u64; 1001];
            for _ in 0..200_000 {
                let k = z.sample(&mut rng);
                assert!((1..=1000).contains(&k));
                counts[k as usize] += 1;
            }
            // P(1) / P(2) = 2^s, and P(1) / P(10) = 10^s, within sampling noise.
            let r2 = counts[1] as f64 / counts[2] as f64;
            let r10 = counts[1] as f64 / counts[10] as f64;
            assert!((r2 / 2f64.powf(s) - 1.0).abs() < 0.1, "s={s}: {r2}");
            assert!((r10 / 10f64.powf(s) - 1.0).abs() < 0.2, "s={s}: {r10}");
        }
    }

    #[test]
    fn uniform_keys_cover_the_space() {
        let g = KeyGen::new(KeyPattern::Uniform, 10);
        let mut rng = Rng::new(7);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            seen[g.next(&mut rng) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}

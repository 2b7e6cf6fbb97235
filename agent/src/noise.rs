//! Exact integer noise: the discrete Laplace distribution sampled with integer arithmetic only
//! (Canonne, Kamath, Steinke, "The Discrete Gaussian for Differential Privacy", 2020, algorithms 1-2),
//! so no floating-point rounding can leak the true count.

/// A source of uniform random integers.
pub trait Uniform {
    /// A uniform integer in `0..n`; `n` is at least 1.
    fn below(&mut self, n: u64) -> u64;
}

/// The operating system's randomness (ring), for production noise.
#[derive(Debug)]
pub(crate) struct SystemUniform(ring::rand::SystemRandom);

impl Default for SystemUniform {
    fn default() -> Self {
        SystemUniform(ring::rand::SystemRandom::new())
    }
}

impl Uniform for SystemUniform {
    fn below(&mut self, n: u64) -> u64 {
        use ring::rand::SecureRandom as _;
        // Rejection keeps the draw exactly uniform: values past the last whole multiple of n retry.
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let mut b = [0u8; 8];
            if self.0.fill(&mut b).is_err() {
                // The OS generator does not fail on supported platforms; never fall back to weak noise.
                panic!("operating-system randomness unavailable");
            }
            let v = u64::from_le_bytes(b);
            if v < zone {
                return v % n;
            }
        }
    }
}

/// True with probability `num / den` (`num <= den`, `den >= 1`).
fn bernoulli(u: &mut impl Uniform, num: u64, den: u64) -> bool {
    u.below(den) < num
}

/// True with probability exp(-num/den) for num/den in [0, 1] (algorithm 1, first case).
fn bernoulli_exp_small(u: &mut impl Uniform, num: u64, den: u64) -> bool {
    let mut k: u64 = 1;
    loop {
        // den * k cannot overflow in practice: k grows past a few dozen with negligible probability.
        if !bernoulli(u, num, den.saturating_mul(k)) {
            return k % 2 == 1;
        }
        k += 1;
    }
}

/// True with probability exp(-num/den) for any num/den >= 0 (algorithm 1).
fn bernoulli_exp(u: &mut impl Uniform, num: u64, den: u64) -> bool {
    let whole = num / den;
    for _ in 0..whole {
        if !bernoulli_exp_small(u, 1, 1) {
            return false;
        }
    }
    bernoulli_exp_small(u, num % den, den)
}

/// A discrete Laplace noise scale `t / s`: P(x) is proportional to exp(-|x| s / t).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scale {
    /// Numerator of the scale.
    pub t: u64,
    /// Denominator of the scale.
    pub s: u64,
}

impl Scale {
    /// The scale giving epsilon (in millionths) for a count that one event changes by one.
    pub(crate) fn for_micro_epsilon(micro_epsilon: u64) -> Scale {
        Scale {
            t: 1_000_000,
            s: micro_epsilon.max(1),
        }
    }
}

/// One sample of the discrete Laplace distribution with the given scale (algorithm 2).
pub(crate) fn discrete_laplace(u: &mut impl Uniform, scale: Scale) -> i64 {
    let Scale { t, s } = scale;
    loop {
        let uu = u.below(t);
        if !bernoulli_exp(u, uu, t) {
            continue;
        }
        let mut v: u64 = 0;
        while bernoulli_exp(u, 1, 1) {
            v += 1;
        }
        let x = uu + t * v;
        let y = (x / s) as i64;
        let negative = bernoulli(u, 1, 2);
        if negative && y == 0 {
            continue;
        }
        return if negative { -y } else { y };
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A seeded generator (SplitMix64) so the distribution tests are exact and repeatable.
    pub(crate) struct Seeded(pub u64);

    impl Uniform for Seeded {
        fn below(&mut self, n: u64) -> u64 {
            let zone = u64::MAX - (u64::MAX % n);
            loop {
                self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = self.0;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                if z < zone {
                    return z % n;
                }
            }
        }
    }

    fn pmf(x: i64, b: f64) -> f64 {
        let q = (-1.0 / b).exp();
        (1.0 - q) / (1.0 + q) * q.powi(x.unsigned_abs() as i32)
    }

    /// Pearson chi-square of `n` samples against the exact pmf, bins -8..=8 plus two tails.
    fn chi_square(samples: &[i64], b: f64) -> f64 {
        let n = samples.len() as f64;
        let mut observed = std::collections::BTreeMap::<i64, f64>::new();
        for &x in samples {
            *observed.entry(x.clamp(-9, 9)).or_default() += 1.0;
        }
        let tail: f64 = 1.0 - (-8..=8).map(|x| pmf(x, b)).sum::<f64>();
        (-9..=9)
            .map(|bin: i64| {
                let p = if bin.abs() == 9 {
                    tail / 2.0
                } else {
                    pmf(bin, b)
                };
                let e = p * n;
                let o = observed.get(&bin).copied().unwrap_or(0.0);
                (o - e) * (o - e) / e
            })
            .sum()
    }

    #[test]
    fn samples_follow_the_discrete_laplace_distribution() {
        let mut u = Seeded(7);
        let scale = Scale { t: 2, s: 1 };
        let samples: Vec<i64> = (0..200_000)
            .map(|_| discrete_laplace(&mut u, scale))
            .collect();
        // 19 bins, 18 degrees of freedom: the 99.9th percentile of chi-square is 42.3.
        let chi = chi_square(&samples, 2.0);
        assert!(chi < 42.3, "chi-square {chi}");
        let mean = samples.iter().sum::<i64>() as f64 / samples.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        // Variance of DLap(b): 2q / (1-q)^2 with q = exp(-1/b).
        let q = (-0.5f64).exp();
        let want = 2.0 * q / ((1.0 - q) * (1.0 - q));
        let var = samples.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / samples.len() as f64;
        assert!(
            (var - want).abs() / want < 0.03,
            "variance {var}, want {want}"
        );
    }

    #[test]
    fn a_wrong_scale_is_detected_by_the_same_test() {
        // The test above must be able to fail: samples at scale 3 do not pass as scale 2.
        let mut u = Seeded(7);
        let samples: Vec<i64> = (0..200_000)
            .map(|_| discrete_laplace(&mut u, Scale { t: 3, s: 1 }))
            .collect();
        assert!(chi_square(&samples, 2.0) > 42.3);
    }

    #[test]
    fn the_scale_for_an_epsilon_is_its_inverse() {
        let mut u = Seeded(11);
        // epsilon 0.5 => scale 2.
        let scale = Scale::for_micro_epsilon(500_000);
        let samples: Vec<i64> = (0..100_000)
            .map(|_| discrete_laplace(&mut u, scale))
            .collect();
        assert!(chi_square(&samples, 2.0) < 42.3);
    }

    #[test]
    fn system_randomness_is_centred_with_the_right_spread() {
        let mut u = SystemUniform::default();
        let scale = Scale { t: 1, s: 1 };
        let n = 50_000;
        let samples: Vec<i64> = (0..n).map(|_| discrete_laplace(&mut u, scale)).collect();
        let q = (-1.0f64).exp();
        let var = 2.0 * q / ((1.0 - q) * (1.0 - q));
        let mean = samples.iter().sum::<i64>() as f64 / n as f64;
        // Six standard errors: a false failure is practically impossible, a biased sampler fails.
        assert!(mean.abs() < 6.0 * (var / n as f64).sqrt(), "mean {mean}");
        let zeros = samples.iter().filter(|&&x| x == 0).count() as f64 / n as f64;
        let p0 = (1.0 - q) / (1.0 + q);
        assert!((zeros - p0).abs() < 0.015, "P(0) {zeros}, want {p0}");
    }

    #[test]
    fn bernoulli_exp_matches_its_probability() {
        let mut u = Seeded(3);
        for (num, den) in [(1u64, 1u64), (1, 2), (3, 2), (0, 5)] {
            let n = 100_000;
            let hits = (0..n).filter(|_| bernoulli_exp(&mut u, num, den)).count() as f64;
            let p = (-(num as f64) / den as f64).exp();
            let se = (p * (1.0 - p) / n as f64).sqrt().max(1e-9);
            assert!(
                ((hits / n as f64) - p).abs() < 6.0 * se + 1e-9,
                "{num}/{den}"
            );
        }
    }
}

//! Initialisations: each draws from the distribution its formula states (sample mean and
//! deviation of a 784 × 256 layer, seeded), and the same seed gives the same layer.

use feedforward::{Init, Layer};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn stats(values: &[f64]) -> (f64, f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let largest = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    (mean, std, largest)
}

#[test]
fn each_init_draws_what_its_formula_says() {
    let (n_in, n_out) = (784.0f64, 256.0f64);
    // (init, weight std, uniform bound if uniform, bias std)
    let cases = [
        (Init::He, (2.0 / n_in).sqrt(), None, 0.0),
        (Init::HeUniform, (2.0 / n_in).sqrt(), Some((6.0 / n_in).sqrt()), 0.0),
        (Init::XavierNormal, (2.0 / (n_in + n_out)).sqrt(), None, 0.0),
        (Init::XavierUniform, (2.0 / (n_in + n_out)).sqrt(), Some((6.0 / (n_in + n_out)).sqrt()), 0.0),
        (Init::LecunNormal, (1.0 / n_in).sqrt(), None, 0.0),
        (
            Init::PytorchLinear,
            (1.0 / (3.0 * n_in)).sqrt(),
            Some(1.0 / n_in.sqrt()),
            (1.0 / (3.0 * n_in)).sqrt(),
        ),
        (Init::SEED_RECIPE, 0.1, None, 1.0),
    ];
    for (init, std, bound, bias_std) in cases {
        let layer = Layer::<f64>::new(784, 256, init, &mut StdRng::seed_from_u64(1));
        let (mean, sample_std, largest) = stats(layer.weight().as_slice());
        // 200,704 draws: the sample deviation is within 1% of the true one (its own error is
        // about 0.2%), the mean within 1% of a deviation of 0.
        assert!((sample_std / std - 1.0).abs() < 0.01, "{init:?}: std {sample_std} vs {std}");
        assert!(mean.abs() < 0.01 * std, "{init:?}: mean {mean}");
        if let Some(a) = bound {
            assert!(largest <= a && largest > 0.99 * a, "{init:?}: largest {largest}, bound {a}");
        } else {
            assert!(largest > 3.5 * std, "{init:?}: normal tails reach past 3.5 deviations");
        }
        let (_, b_std, b_largest) = stats(layer.bias().unwrap().as_slice());
        if bias_std == 0.0 {
            assert_eq!(b_largest, 0.0, "{init:?}: zero bias");
        } else {
            // 256 draws: within 15%.
            assert!((b_std / bias_std - 1.0).abs() < 0.15, "{init:?}: bias std {b_std} vs {bias_std}");
        }
        let again = Layer::<f64>::new(784, 256, init, &mut StdRng::seed_from_u64(1));
        assert_eq!(again, layer, "{init:?}: same seed, same layer");
    }
}

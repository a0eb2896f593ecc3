//! The optimizers against updates computed by hand on tiny tensors, against 20-step
//! trajectories of an independent f64 reference written from PyTorch's documented algorithms,
//! and the rule that a rejected step leaves no trace.
//!
//! Bounds: a single update matches the hand computation to 1e-12 relative; a 20-step
//! trajectory matches the reference to 1e-10 relative (the two compute the same formulas in a
//! different order, so they round differently, and the rounding compounds over steps).

use approx::assert_relative_eq;
use feedforward::Regularization::{self, Applied, Exempt};
use feedforward::optim::{DecayScope, Momentum, OptimizerState, RmspropElementwise, SgdConfig};
use feedforward::{Adam, AdamConfig, AdamW, Error, Optimizer, Parameter, Rmsprop, RmspropRule, Sgd};
use nalgebra::DMatrix;

fn param(values: &[f64], grads: &[f64], regularization: Regularization) -> Parameter<f64> {
    let mut p = Parameter::new("p", DMatrix::from_column_slice(values.len(), 1, values), regularization);
    p.grad_mut().copy_from_slice(grads);
    p
}

/// What a network does in a step: begin, update every tensor out of place, and, if all are
/// finite, commit the optimizer and the new values. Returns whether the step was committed.
fn step<O: Optimizer<f64> + ?Sized>(opt: &mut O, params: &mut [&mut Parameter<f64>]) -> bool {
    opt.begin_step();
    let mut next: Vec<Vec<f64>> = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let mut n = vec![f64::NAN; p.len()];
        if !opt.update(i, p, &mut n) {
            return false;
        }
        next.push(n);
    }
    opt.commit_step();
    for (p, n) in params.iter_mut().zip(next) {
        p.value_mut().copy_from_slice(&n);
    }
    true
}

fn step1<O: Optimizer<f64>>(opt: &mut O, p: &mut Parameter<f64>) {
    assert!(step(opt, &mut [p]));
}

fn sgd(learning_rate: f64, momentum: Momentum<f64>, weight_decay: f64, decay_scope: DecayScope) -> Sgd<f64> {
    Sgd::new(SgdConfig { learning_rate, momentum, weight_decay, decay_scope }).unwrap()
}

/// Elementwise RMSprop at `lr` with `settings`.
fn rmsprop(lr: f64, settings: RmspropElementwise<f64>) -> Rmsprop<f64> {
    Rmsprop::new(lr, RmspropRule::Elementwise(settings)).unwrap()
}

// ---- single updates by hand ----

#[test]
fn sgd_by_hand() {
    // Plain: P −= lr·∂P.
    let mut p = param(&[1.0, -2.0], &[0.5, -4.0], Applied);
    step1(&mut sgd(0.1, Momentum::None, 0.0, DecayScope::Regularized), &mut p);
    assert_eq!(p.value().as_slice(), &[1.0 - 0.05, -2.0 + 0.4]);

    // Heavy ball, dampening 0.5: b = g on the first step (no dampening), then μb + 0.5g.
    let mut opt = sgd(0.1, Momentum::Heavy { momentum: 0.9, dampening: 0.5 }, 0.0, DecayScope::Regularized);
    let mut p = param(&[1.0], &[2.0], Applied);
    step1(&mut opt, &mut p);
    assert_relative_eq!(p.value()[0], 1.0 - 0.1 * 2.0, max_relative = 1e-12);
    p.grad_mut()[0] = 1.0;
    step1(&mut opt, &mut p);
    let b = 0.9 * 2.0 + 0.5 * 1.0;
    assert_relative_eq!(p.value()[0], 0.8 - 0.1 * b, max_relative = 1e-12);

    // Nesterov: b as heavy ball without dampening; P −= lr·(g + μb).
    let mut opt = sgd(0.1, Momentum::Nesterov { momentum: 0.9 }, 0.0, DecayScope::Regularized);
    let mut p = param(&[1.0], &[2.0], Applied);
    step1(&mut opt, &mut p);
    assert_relative_eq!(p.value()[0], 1.0 - 0.1 * (2.0 + 0.9 * 2.0), max_relative = 1e-12);
    p.grad_mut()[0] = 1.0;
    step1(&mut opt, &mut p);
    let b = 0.9 * 2.0 + 1.0;
    assert_relative_eq!(p.value()[0], 0.62 - 0.1 * (1.0 + 0.9 * b), max_relative = 1e-12);
}

#[test]
fn weight_decay_skips_biases_unless_told_otherwise() {
    for (scope, bias_decayed) in [(DecayScope::Regularized, false), (DecayScope::All, true)] {
        let mut opt = sgd(0.1, Momentum::None, 0.5, scope);
        let mut weight = param(&[2.0], &[0.0], Applied);
        let mut bias = param(&[2.0], &[0.0], Exempt);
        assert!(step(&mut opt, &mut [&mut weight, &mut bias]));
        // g = 0 + 0.5·2 = 1 → P = 2 − 0.1.
        assert_relative_eq!(weight.value()[0], 1.9, max_relative = 1e-12);
        assert_eq!(bias.value()[0], if bias_decayed { 1.9 } else { 2.0 }, "{scope:?}");
    }
}

#[test]
fn adam_and_adamw_by_hand() {
    // Step 1: m̂ = g, v̂ = g², so P −= lr·g/(|g| + ε) whatever the betas.
    let mut adam =
        Adam::new(AdamConfig { learning_rate: 0.1, weight_decay: 0.0, ..AdamConfig::default() }).unwrap();
    let mut p = param(&[1.0, -2.0], &[0.5, -4.0], Applied);
    step1(&mut adam, &mut p);
    assert_relative_eq!(p.value()[0], 1.0 - 0.1 * 0.5 / (0.5 + 1e-8), max_relative = 1e-12);
    assert_relative_eq!(p.value()[1], -2.0 + 0.1 * 4.0 / (4.0 + 1e-8), max_relative = 1e-12);
    // Step 2 with g = 1 on the first entry: m = 0.9·0.05 + 0.1, v = 0.999·0.00025 + 0.001.
    p.grad_mut().copy_from_slice(&[1.0, 0.0]);
    let before = p.value()[0];
    step1(&mut adam, &mut p);
    let (m, v) = (0.9 * 0.05 + 0.1, 0.999 * 0.001 * 0.25 + 0.001);
    let (m_hat, v_hat) = (m / (1.0 - 0.81), v / (1.0 - 0.999f64.powi(2)));
    assert_relative_eq!(p.value()[0], before - 0.1 * m_hat / (v_hat.sqrt() + 1e-8), max_relative = 1e-12);

    // Adam with weight decay: g = ∂P + λP; at step 1 the update is still lr·sign(g).
    let config = AdamConfig { learning_rate: 0.1, weight_decay: 0.5, ..AdamConfig::default() };
    let mut p = param(&[2.0], &[-0.5], Applied);
    step1(&mut Adam::new(config).unwrap(), &mut p);
    assert_relative_eq!(p.value()[0], 2.0 - 0.1 * 0.5 / (0.5 + 1e-8), max_relative = 1e-12);
    // AdamW: P·(1 − lr·λ) first, then the Adam step on ∂P alone.
    let mut p = param(&[2.0], &[-0.5], Applied);
    step1(&mut AdamW::new(config).unwrap(), &mut p);
    assert_relative_eq!(p.value()[0], 2.0 * (1.0 - 0.05) + 0.1 * 0.5 / (0.5 + 1e-8), max_relative = 1e-12);
    assert_eq!(AdamW::<f64>::with_learning_rate(1e-3).unwrap().config().weight_decay, 0.01);
}

#[test]
fn rmsprop_elementwise_by_hand() {
    let mut opt = rmsprop(0.1, RmspropElementwise { alpha: 0.9, ..RmspropElementwise::default() });
    let mut p = param(&[1.0, -2.0], &[0.5, -4.0], Applied);
    step1(&mut opt, &mut p);
    // v = 0.1·g² = [0.025, 1.6]; P −= 0.1·g/(√v + 1e-8)
    let expect = [1.0 - 0.1 * 0.5 / (0.025f64.sqrt() + 1e-8), -2.0 + 0.1 * 4.0 / (1.6f64.sqrt() + 1e-8)];
    assert_relative_eq!(p.value()[0], expect[0], max_relative = 1e-12);
    assert_relative_eq!(p.value()[1], expect[1], max_relative = 1e-12);

    // Centered with momentum, one step: v = 0.1g², ḡ = 0.1g, ṽ = v − ḡ², b = g/(√ṽ + ε).
    let mut opt = rmsprop(
        0.1,
        RmspropElementwise { alpha: 0.9, momentum: 0.5, centered: true, ..RmspropElementwise::default() },
    );
    let mut p = param(&[1.0], &[2.0], Applied);
    step1(&mut opt, &mut p);
    let b1 = 2.0 / ((0.4f64 - 0.04).sqrt() + 1e-8);
    assert_relative_eq!(p.value()[0], 1.0 - 0.1 * b1, max_relative = 1e-12);
    // Step 2, g = 1: v = 0.36 + 0.1, ḡ = 0.18 + 0.1, b = 0.5·b1 + g/(√(v − ḡ²) + ε).
    p.grad_mut()[0] = 1.0;
    let before = p.value()[0];
    step1(&mut opt, &mut p);
    let (v, mean): (f64, f64) = (0.9 * 0.4 + 0.1, 0.9 * 0.2 + 0.1);
    let b2 = 0.5 * b1 + 1.0 / ((v - mean * mean).sqrt() + 1e-8);
    assert_relative_eq!(p.value()[0], before - 0.1 * b2, max_relative = 1e-12);
}

#[test]
fn rmsprop_per_tensor_matches_the_recipe_by_hand() {
    let mut opt = Rmsprop::per_tensor(0.5, None).unwrap();
    let mut p = param(&[1.0, 2.0], &[3.0, 4.0], Applied);
    step1(&mut opt, &mut p);
    // g = 0.99·1 + 0.01·‖∂P‖² = 1.24; P −= 0.5/√(1.24 + 1e-3)·∂P
    let g: f64 = 0.99 + 0.01 * 25.0;
    let s = 0.5 / (g + 1e-3).sqrt();
    assert_relative_eq!(p.value()[0], 1.0 - s * 3.0, max_relative = 1e-12);
    assert_relative_eq!(p.value()[1], 2.0 - s * 4.0, max_relative = 1e-12);
    assert_relative_eq!(opt.mean_square_norms()[0], g, max_relative = 1e-12);
    assert_relative_eq!(opt.effective_learning_rates()[0], s, max_relative = 1e-12);
}

#[test]
fn rmsprop_per_tensor_keeps_one_g_per_tensor_and_resets_every_k_steps() {
    let mut opt = Rmsprop::per_tensor(0.1, None).unwrap();
    let (mut a, mut b) = (param(&[0.0], &[1.0], Applied), param(&[0.0, 0.0], &[2.0, 2.0], Exempt));
    assert!(step(&mut opt, &mut [&mut a, &mut b]));
    assert_relative_eq!(opt.mean_square_norms()[0], 0.99 + 0.01 * 1.0, max_relative = 1e-12);
    assert_relative_eq!(opt.mean_square_norms()[1], 0.99 + 0.01 * 8.0, max_relative = 1e-12);

    let mut opt = Rmsprop::per_tensor(0.1, Some(3)).unwrap();
    let mut p = param(&[0.0], &[10.0], Applied);
    let mut g = 1.0;
    for step_number in 1..=7 {
        if step_number == 4 || step_number == 7 {
            g = 1.0; // reset before steps 4 and 7
        }
        g = 0.99 * g + 0.01 * 100.0;
        step1(&mut opt, &mut p);
        assert_relative_eq!(opt.mean_square_norms()[0], g, max_relative = 1e-12);
    }
}

#[test]
fn bad_hyperparameters_are_rejected_at_construction() {
    fn bad<O: std::fmt::Debug>(r: Result<O, Error>, name: &str) {
        match r {
            Err(Error::InvalidHyperparameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("expected {name} to be rejected, got {other:?}"),
        }
    }
    bad(Rmsprop::<f64>::elementwise(0.0), "learning rate");
    bad(Rmsprop::<f64>::elementwise(f64::NAN), "learning rate");
    bad(Rmsprop::<f64>::per_tensor(f64::INFINITY, None), "learning rate");
    bad(Rmsprop::<f64>::per_tensor(0.5, Some(0)), "reset every");
    let elementwise = |s: RmspropElementwise<f64>| Rmsprop::new(0.1, RmspropRule::Elementwise(s));
    bad(elementwise(RmspropElementwise { alpha: 1.0, ..Default::default() }), "alpha");
    bad(elementwise(RmspropElementwise { eps: 0.0, ..Default::default() }), "eps");
    bad(elementwise(RmspropElementwise { weight_decay: -1.0, ..Default::default() }), "weight decay");
    bad(elementwise(RmspropElementwise { momentum: 1.0, ..Default::default() }), "momentum");
    bad(Rmsprop::new(0.1, RmspropRule::PerTensor { gamma: f64::NAN, eps: 1e-3, reset_every: None }), "gamma");
    bad(Sgd::<f64>::with_learning_rate(-1.0), "learning rate");
    let momentum = |m| Sgd::<f64>::new(SgdConfig { momentum: m, ..SgdConfig::default() });
    bad(momentum(Momentum::Heavy { momentum: 1.0, dampening: 0.0 }), "momentum");
    bad(momentum(Momentum::Heavy { momentum: 0.9, dampening: 1.5 }), "dampening");
    bad(momentum(Momentum::Nesterov { momentum: 0.0 }), "momentum");
    bad(Adam::new(AdamConfig { beta1: 1.0, ..AdamConfig::<f64>::default() }), "beta1");
    bad(AdamW::new(AdamConfig { beta2: -0.1, ..AdamConfig::<f64>::default() }), "beta2");
    bad(Adam::new(AdamConfig { eps: f64::NAN, ..AdamConfig::<f64>::default() }), "eps");
    bad(
        AdamW::new(AdamConfig { weight_decay: f64::INFINITY, ..AdamConfig::<f64>::default() }),
        "weight decay",
    );
    let mut ok = Adam::<f64>::with_learning_rate(0.1).unwrap();
    assert!(ok.set_learning_rate(-0.1).is_err());
    assert_eq!(ok.learning_rate(), 0.1);
}

// ---- 20-step trajectories against an independent reference ----

/// A plain f64 reference, written from PyTorch's documented algorithms, one entry at a time.
#[derive(Clone, Copy, Debug)]
enum Reference {
    Sgd { lr: f64, momentum: f64, dampening: f64, nesterov: bool, wd: f64 },
    Adam { lr: f64, beta1: f64, beta2: f64, eps: f64, wd: f64, decoupled: bool },
    Rmsprop { lr: f64, alpha: f64, eps: f64, wd: f64, momentum: f64, centered: bool },
}

/// One entry's state in the reference: (m or b, v, ḡ, b).
#[derive(Clone, Copy, Default)]
struct EntryState {
    first: f64,
    second: f64,
    mean: f64,
    buffer: f64,
}

impl Reference {
    /// Updates `p` in place from gradient `g` at 1-based step `t`; `decay` says whether weight
    /// decay applies to this tensor.
    fn update(self, p: &mut f64, g: f64, s: &mut EntryState, t: i32, decay: bool) {
        match self {
            Reference::Sgd { lr, momentum, dampening, nesterov, wd } => {
                let mut d = g;
                if decay {
                    d += wd * *p;
                }
                if momentum != 0.0 {
                    s.buffer = if t > 1 { momentum * s.buffer + (1.0 - dampening) * d } else { d };
                    d = if nesterov { d + momentum * s.buffer } else { s.buffer };
                }
                *p -= lr * d;
            }
            Reference::Adam { lr, beta1, beta2, eps, wd, decoupled } => {
                let mut d = g;
                if decay && decoupled {
                    *p *= 1.0 - lr * wd;
                } else if decay {
                    d += wd * *p;
                }
                s.first = beta1 * s.first + (1.0 - beta1) * d;
                s.second = beta2 * s.second + (1.0 - beta2) * d * d;
                // PyTorch's implementation form: step size lr/bc1, denominator √v/√bc2 + ε.
                let (bc1, bc2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
                *p -= lr / bc1 * s.first / (s.second.sqrt() / bc2.sqrt() + eps);
            }
            Reference::Rmsprop { lr, alpha, eps, wd, momentum, centered } => {
                let mut d = g;
                if decay {
                    d += wd * *p;
                }
                s.second = alpha * s.second + (1.0 - alpha) * d * d;
                let mut avg = s.second;
                if centered {
                    s.mean = alpha * s.mean + (1.0 - alpha) * d;
                    avg -= s.mean * s.mean;
                }
                let denom = avg.sqrt() + eps;
                if momentum > 0.0 {
                    s.buffer = momentum * s.buffer + d / denom;
                    *p -= lr * s.buffer;
                } else {
                    *p -= lr * d / denom;
                }
            }
        }
    }
}

/// The gradient of `Σ (p − c)²` plus a wobble that depends on the step, so the trajectory
/// feeds back on itself.
fn gradient(p: f64, i: usize, t: i32) -> f64 {
    let c = (i as f64 * 0.7).sin();
    2.0 * (p - c) + 0.3 * ((t as f64) * 1.3 + i as f64).cos()
}

fn trajectory(mut opt: impl Optimizer<f64>, reference: Reference, scope: DecayScope) {
    let start_w = [0.5, -1.2, 2.0, 0.1, -0.3];
    let start_b = [0.2, -0.4, 1.5];
    let mut w = param(&start_w, &[0.0; 5], Applied);
    let mut b = param(&start_b, &[0.0; 3], Exempt);
    let (mut rw, mut rb) = (start_w.to_vec(), start_b.to_vec());
    let (mut sw, mut sb) = ([EntryState::default(); 5], [EntryState::default(); 3]);
    for t in 1..=20 {
        for (offset, p) in [(0, &mut w), (5, &mut b)] {
            let grads: Vec<f64> =
                p.value().iter().enumerate().map(|(i, &v)| gradient(v, i + offset, t)).collect();
            p.grad_mut().copy_from_slice(&grads);
        }
        assert!(step(&mut opt, &mut [&mut w, &mut b]));
        for (i, (p, s)) in rw.iter_mut().zip(&mut sw).enumerate() {
            let g = gradient(*p, i, t);
            reference.update(p, g, s, t, true);
        }
        for (i, (p, s)) in rb.iter_mut().zip(&mut sb).enumerate() {
            let g = gradient(*p, i + 5, t);
            reference.update(p, g, s, t, scope == DecayScope::All);
        }
    }
    for (got, want) in w.value().iter().chain(b.value().iter()).zip(rw.iter().chain(&rb)) {
        assert_relative_eq!(*got, *want, max_relative = 1e-10);
    }
    // The trajectories moved: the test is not comparing two copies of the start.
    assert!(rw.iter().zip(&start_w).all(|(a, b)| (a - b).abs() > 1e-3), "{reference:?}");
}

#[test]
fn sgd_follows_the_reference_for_20_steps() {
    let (lr, wd) = (0.05, 0.1);
    let nones = Reference::Sgd { lr, momentum: 0.0, dampening: 0.0, nesterov: false, wd };
    trajectory(sgd(lr, Momentum::None, wd, DecayScope::Regularized), nones, DecayScope::Regularized);
    let heavy = Reference::Sgd { lr, momentum: 0.9, dampening: 0.3, nesterov: false, wd };
    let m = Momentum::Heavy { momentum: 0.9, dampening: 0.3 };
    trajectory(sgd(lr, m, wd, DecayScope::All), heavy, DecayScope::All);
    let nesterov = Reference::Sgd { lr, momentum: 0.8, dampening: 0.0, nesterov: true, wd };
    let m = Momentum::Nesterov { momentum: 0.8 };
    trajectory(sgd(lr, m, wd, DecayScope::Regularized), nesterov, DecayScope::Regularized);
}

#[test]
fn adam_and_adamw_follow_the_reference_for_20_steps() {
    for (wd, scope) in
        [(0.0, DecayScope::Regularized), (0.2, DecayScope::Regularized), (0.2, DecayScope::All)]
    {
        let config = AdamConfig {
            learning_rate: 0.05,
            beta1: 0.8,
            beta2: 0.95,
            eps: 1e-6,
            weight_decay: wd,
            decay_scope: scope,
        };
        let (lr, beta1, beta2, eps) = (0.05, 0.8, 0.95, 1e-6);
        let adam = Reference::Adam { lr, beta1, beta2, eps, wd, decoupled: false };
        trajectory(Adam::new(config).unwrap(), adam, scope);
        let adamw = Reference::Adam { lr, beta1, beta2, eps, wd, decoupled: true };
        trajectory(AdamW::new(config).unwrap(), adamw, scope);
    }
}

#[test]
fn rmsprop_follows_the_reference_for_20_steps() {
    let (lr, alpha, eps, wd) = (0.01, 0.9, 1e-6, 0.05);
    for (momentum, centered) in [(0.0, false), (0.0, true), (0.7, false), (0.7, true)] {
        let reference = Reference::Rmsprop { lr, alpha, eps, wd, momentum, centered };
        trajectory(
            rmsprop(
                lr,
                RmspropElementwise {
                    alpha,
                    eps,
                    weight_decay: wd,
                    momentum,
                    centered,
                    ..RmspropElementwise::default()
                },
            ),
            reference,
            DecayScope::Regularized,
        );
    }
}

/// Long tensors go through the vectorized chunks and the parallel blocks (and a ragged tail):
/// still the rule, entry by entry.
#[test]
fn long_tensors_follow_the_rules_entry_by_entry() {
    let n = 70_003;
    let values: Vec<f64> = (0..n).map(|i| ((i * 37 % 101) as f64 - 50.0) / 25.0).collect();
    let grads: Vec<f64> = (0..n).map(|i| ((i * 53 % 97) as f64 - 48.0) / 40.0).collect();
    let config = AdamConfig { learning_rate: 0.01, weight_decay: 0.1, ..AdamConfig::default() };
    let cases: Vec<(Box<dyn Optimizer<f64>>, Reference)> = vec![
        (
            Box::new(rmsprop(
                0.01,
                RmspropElementwise {
                    alpha: 0.9,
                    eps: 1e-6,
                    weight_decay: 0.05,
                    momentum: 0.5,
                    centered: true,
                    ..RmspropElementwise::default()
                },
            )),
            Reference::Rmsprop { lr: 0.01, alpha: 0.9, eps: 1e-6, wd: 0.05, momentum: 0.5, centered: true },
        ),
        (
            Box::new(AdamW::new(config).unwrap()),
            Reference::Adam { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, wd: 0.1, decoupled: true },
        ),
        (
            Box::new(sgd(0.01, Momentum::Nesterov { momentum: 0.9 }, 0.1, DecayScope::Regularized)),
            Reference::Sgd { lr: 0.01, momentum: 0.9, dampening: 0.0, nesterov: true, wd: 0.1 },
        ),
    ];
    for (mut opt, reference) in cases {
        let mut p = param(&values, &grads, Applied);
        let (mut expect, mut state) = (values.clone(), vec![EntryState::default(); n]);
        for t in 1..=3 {
            assert!(step(opt.as_mut(), &mut [&mut p]));
            for ((p, s), &g) in expect.iter_mut().zip(&mut state).zip(&grads) {
                reference.update(p, g, s, t, true);
            }
        }
        for (got, want) in p.value().iter().zip(&expect) {
            assert_relative_eq!(*got, *want, max_relative = 1e-12);
        }
    }
}

// ---- rejected steps ----

/// Every optimizer of the crate, in a configuration that keeps every kind of state.
fn every_optimizer() -> Vec<(&'static str, Box<dyn Optimizer<f64>>)> {
    let adam = AdamConfig { learning_rate: 0.01, weight_decay: 0.1, ..AdamConfig::default() };
    vec![
        (
            "sgd",
            Box::new(sgd(0.05, Momentum::Heavy { momentum: 0.9, dampening: 0.1 }, 0.01, DecayScope::All)),
        ),
        ("nesterov", Box::new(sgd(0.05, Momentum::Nesterov { momentum: 0.9 }, 0.0, DecayScope::Regularized))),
        ("adam", Box::new(Adam::new(adam).unwrap())),
        ("adamw", Box::new(AdamW::new(adam).unwrap())),
        (
            "rmsprop",
            Box::new(rmsprop(
                0.01,
                RmspropElementwise {
                    alpha: 0.9,
                    weight_decay: 0.01,
                    momentum: 0.5,
                    centered: true,
                    ..RmspropElementwise::default()
                },
            )),
        ),
        ("rmsprop per tensor", Box::new(Rmsprop::per_tensor(0.1, Some(2)).unwrap())),
    ]
}

/// A non-finite value flagged in any block of a long tensor (the last of several parallel
/// blocks, the ragged tail, the first) fails the update, whatever the optimizer.
#[test]
fn update_flags_a_bad_value_in_any_block() {
    let n = 200_003;
    let value: Vec<f64> = (0..n).map(|i| ((i % 17) as f64 - 8.0) * 0.01).collect();
    let good: Vec<f64> = (0..n).map(|i| ((i % 13) as f64 - 6.0) * 0.001).collect();
    for (name, mut opt) in every_optimizer() {
        for bad_at in [n - 1, n - 20, n / 2, 3] {
            for bad in [f64::NAN, f64::INFINITY] {
                let mut next = vec![0.0; n];
                opt.begin_step();
                assert!(opt.update(0, &param(&value, &good, Applied), &mut next), "{name}: a finite update");
                let mut grad = good.clone();
                grad[bad_at] = bad;
                assert!(
                    !opt.update(1, &param(&value, &grad, Applied), &mut next),
                    "{name}: {bad} at {bad_at}"
                );
            }
        }
    }
}

/// A state that overflows while the new value stays finite (Adam's `v` from a gradient of
/// 1e200) fails the step too: committing it would freeze that tensor for good.
#[test]
fn an_overflowing_state_fails_the_update() {
    let mut adam = Adam::<f64>::with_learning_rate(0.1).unwrap();
    let mut next = [0.0];
    adam.begin_step();
    assert!(!adam.update(0, &param(&[1.0], &[1e200], Applied), &mut next));
    assert!(next[0].is_finite(), "the value alone looks fine: {}", next[0]);
}

/// A step rejected after some tensors were updated (the last tensor's gradient is NaN) leaves
/// the optimizer exactly as it was: the run goes on bit for bit as if the step never happened.
/// So does a rejected *first* step: it must not leave state behind that makes the next step
/// look like a later one (SGD's first step takes `b = ∂P`, not `b = (1 − τ)∂P`).
#[test]
fn a_rejected_step_leaves_the_optimizer_untouched() {
    // The poisoned step, seen by one run only: the first tensor updates and stages its state,
    // the second fails.
    fn poison(name: &str, opt: &mut dyn Optimizer<f64>, [first, second]: &mut [Parameter<f64>; 2]) {
        let saved = second.grad()[0];
        second.grad_mut()[0] = f64::NAN;
        assert!(!step(opt, &mut [first, second]), "{name}");
        second.grad_mut()[0] = saved;
    }
    for ((name, mut seen), (_, mut clean)) in every_optimizer().into_iter().zip(every_optimizer()) {
        let mut a = [param(&[0.5, -1.0, 2.0], &[0.3, 0.2, -0.1], Applied), param(&[0.3], &[0.4], Exempt)];
        let mut b = a.clone();
        poison(name, seen.as_mut(), &mut a);
        assert_eq!(seen.state(), clean.state(), "{name}: a rejected first step leaves no state");
        for t in 1..=6 {
            for (params, opt) in [(&mut a, &mut seen), (&mut b, &mut clean)] {
                for (k, p) in params.iter_mut().enumerate() {
                    let grads: Vec<f64> =
                        (0..p.len()).map(|i| gradient(p.value()[i], i + 3 * k, t)).collect();
                    p.grad_mut().copy_from_slice(&grads);
                }
                let [first, second] = params;
                assert!(step(opt.as_mut(), &mut [first, second]), "{name}, step {t}");
            }
            if t == 3 {
                poison(name, seen.as_mut(), &mut a);
            }
        }
        assert_eq!(a, b, "{name}");
        assert_eq!(seen.state(), clean.state(), "{name}");
    }
}

// ---- state for checkpoints ----

#[test]
fn state_round_trips_and_refuses_another_kind() {
    for ((name, mut original), (_, mut restored)) in every_optimizer().into_iter().zip(every_optimizer()) {
        let mut p = [param(&[0.5, -1.0], &[0.0; 2], Applied), param(&[0.3], &[0.0], Exempt)];
        let drive = |opt: &mut dyn Optimizer<f64>, p: &mut [Parameter<f64>; 2], t: i32| {
            for (k, q) in p.iter_mut().enumerate() {
                let grads: Vec<f64> = (0..q.len()).map(|i| gradient(q.value()[i], i + 2 * k, t)).collect();
                q.grad_mut().copy_from_slice(&grads);
            }
            let [first, second] = p;
            assert!(step(opt, &mut [first, second]));
        };
        (1..=3).for_each(|t| drive(original.as_mut(), &mut p, t));
        let state = original.state().expect("the crate's optimizers have a state");
        assert_eq!(state.steps, 3, "{name}");
        restored.load_state(&state, &[2, 1]).unwrap();
        let mut q = p.clone();
        for t in 4..=6 {
            drive(original.as_mut(), &mut p, t);
            drive(restored.as_mut(), &mut q, t);
        }
        assert_eq!(p, q, "{name}: a restored optimizer continues the same run");
        let other = OptimizerState::<f64> { kind: "nonesuch".into(), steps: 0, buffers: Vec::new() };
        assert!(matches!(restored.load_state(&other, &[2, 1]), Err(Error::OptimizerState { .. })), "{name}");
    }
}

/// A state that does not fit the parameters it is loaded for is refused, naming the buffer,
/// and the optimizer keeps the state it had: a buffer one value too long or too short, a
/// tensor number past the parameters, a number not written plainly, a buffer that belongs to
/// none of the optimizer's state kinds, a NaN.
#[test]
fn a_state_that_does_not_fit_the_parameters_is_refused() {
    for (name, mut optimizer) in every_optimizer() {
        let mut p = [param(&[0.5, -1.0], &[0.3, 0.1], Applied), param(&[0.3], &[-0.2], Exempt)];
        let [first, second] = &mut p;
        assert!(step(optimizer.as_mut(), &mut [first, second]));
        let state = optimizer.state().unwrap();
        assert!(!state.buffers.is_empty(), "{name}");
        optimizer.load_state(&state, &[2, 1]).unwrap();
        // (what, the buffer the error must name, the state, the parameters' lengths)
        let mut cases: Vec<(&str, String, OptimizerState<f64>, Vec<usize>)> = Vec::new();
        for k in 0..state.buffers.len() {
            let mut edited = |what, edit: &dyn Fn(&mut String, &mut Vec<f64>)| {
                let mut bad = state.clone();
                let (key, values) = &mut bad.buffers[k];
                edit(key, values);
                cases.push((what, bad.buffers[k].0.clone(), bad, vec![2, 1]));
            };
            edited("one value longer", &|_, v| v.push(0.0));
            edited("one value shorter", &|_, v| {
                v.pop();
            });
            edited("holding a NaN", &|_, v| v[0] = f64::NAN);
            edited("numbered 01", &|n, _| *n = n.replace('.', ".0"));
            edited("numbered +1", &|n, _| *n = n.replace('.', ".+"));
            let key = state.buffers[k].0.clone();
            let index: usize = key.rsplit_once('.').unwrap().1.parse().unwrap();
            let alone = OptimizerState { buffers: vec![state.buffers[k].clone()], ..state.clone() };
            cases.push(("for a parameter the network lacks", key, alone, vec![2, 1][..index].to_vec()));
        }
        let mut stray = state.clone();
        stray.buffers.push(("nonesuch.0".into(), vec![0.0; 2]));
        cases.push(("of no kind of this optimizer", "nonesuch.0".into(), stray, vec![2, 1]));
        for (case, key, bad, lengths) in cases {
            let e = optimizer.load_state(&bad, &lengths).unwrap_err();
            assert!(
                matches!(&e, Error::OptimizerState { reason } if reason.contains(&format!("{key:?}"))),
                "{name}, {key} {case}: {e}"
            );
            assert_eq!(optimizer.state().as_ref(), Some(&state), "{name}, {key} {case}: the state changed");
        }
    }
}

/// A state that decays into the subnormal range is stored as 0 (arithmetic on subnormals is
/// many times slower): a momentum buffer halving from 1e-30 reaches 0 without passing through
/// a subnormal value, and the parameter still moves by exactly lr·b until then.
#[test]
fn decaying_state_flushes_to_zero_instead_of_going_subnormal() {
    let mut opt = Sgd::new(SgdConfig {
        learning_rate: 1.0f32,
        momentum: Momentum::Heavy { momentum: 0.5, dampening: 0.0 },
        ..SgdConfig::default()
    })
    .unwrap();
    let mut p = Parameter::new("w", DMatrix::from_element(1, 1, 0.0f32), Regularization::Applied);
    p.grad_mut()[0] = 1e-30;
    let mut b = 1e-30f32;
    let mut next = [0.0f32];
    for step in 0..40 {
        opt.begin_step();
        assert!(opt.update(0, &p, &mut next));
        opt.commit_step();
        let stored = opt.state().unwrap().buffers[0].1[0];
        assert!(stored == 0.0 || stored >= f32::MIN_POSITIVE, "step {step}: {stored:e} is subnormal");
        if step > 0 {
            b *= 0.5;
        }
        let expected = if b < f32::MIN_POSITIVE { 0.0 } else { b };
        assert_eq!(stored, expected, "step {step}");
        p.grad_mut()[0] = 0.0;
    }
    assert_eq!(opt.state().unwrap().buffers[0].1[0], 0.0, "flushed after about 27 halvings");
}

/// `{:?}` of an optimizer and of its saved state names the rule and the buffers' lengths, not
/// the values: as short for a tensor of 100,000 weights as for one of 3.
#[test]
fn debug_output_is_a_summary_not_the_state() {
    fn shown<O: Optimizer<f64> + std::fmt::Debug>(mut opt: O, len: usize) -> (String, String) {
        let mut p = param(&vec![0.5; len], &vec![0.25; len], Applied);
        step1(&mut opt, &mut p);
        (format!("{opt:?}"), format!("{:?}", opt.state().unwrap()))
    }
    let momentum =
        SgdConfig { momentum: Momentum::Heavy { momentum: 0.9, dampening: 0.0 }, ..SgdConfig::default() };
    for len in [3, 100_000] {
        let all = [
            shown(Adam::new(AdamConfig::default()).unwrap(), len),
            shown(AdamW::new(AdamConfig::adamw()).unwrap(), len),
            shown(Rmsprop::elementwise(1e-3).unwrap(), len),
            shown(Sgd::new(momentum).unwrap(), len),
        ];
        for ((optimizer, state), name) in all.iter().zip(["Adam {", "AdamW {", "Rmsprop {", "Sgd {"]) {
            assert!(optimizer.starts_with(name) && optimizer.len() < 500, "{optimizer}");
            assert!(optimizer.contains(&format!("lengths: [{len}]")), "{optimizer}");
            assert!(state.len() < 200 && state.contains(&format!(".0\", {len})")), "{state}");
        }
    }
}

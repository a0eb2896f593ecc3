//! The optimizer rules against updates computed by hand on a tiny tensor.

use approx::assert_relative_eq;
use feedforward::{Error, Optimizer, Parameter, Rmsprop, RmspropRule, SoftmaxCrossEntropy};
use nalgebra::DMatrix;

fn param(values: &[f64], grads: &[f64]) -> Parameter<f64> {
    let mut p = Parameter::new("weight", DMatrix::from_column_slice(values.len(), 1, values), true);
    p.grad_mut().copy_from_slice(grads);
    p
}

/// What a network does with parameter `index`: the optimizer writes the new value, it is
/// committed.
fn apply(opt: &mut Rmsprop<f64>, index: usize, p: &mut Parameter<f64>) {
    let mut next = vec![f64::NAN; p.len()];
    opt.update(index, p.value().as_slice(), p.grad().as_slice(), &mut next);
    p.value_mut().copy_from_slice(&next);
}

fn step(opt: &mut Rmsprop<f64>, p: &mut Parameter<f64>) {
    opt.begin_step();
    apply(opt, 0, p);
}

#[test]
fn elementwise_matches_pytorch_by_hand() {
    let rule = RmspropRule::Elementwise { alpha: 0.9, eps: 1e-8, weight_decay: 0.0 };
    let mut opt = Rmsprop::new(0.1, rule).unwrap();
    let mut p = param(&[1.0, -2.0], &[0.5, -4.0]);
    step(&mut opt, &mut p);
    // v = 0.1·g² = [0.025, 1.6]; p -= 0.1·g/(√v + 1e-8)
    let expect = [1.0 - 0.1 * 0.5 / (0.025f64.sqrt() + 1e-8), -2.0 + 0.1 * 4.0 / (1.6f64.sqrt() + 1e-8)];
    assert_relative_eq!(p.value()[0], expect[0], max_relative = 1e-12);
    assert_relative_eq!(p.value()[1], expect[1], max_relative = 1e-12);
    // Second step with a new gradient: v = 0.9·v + 0.1·g².
    p.grad_mut().copy_from_slice(&[1.0, 0.0]);
    step(&mut opt, &mut p);
    let v0: f64 = 0.9 * 0.025 + 0.1 * 1.0;
    assert_relative_eq!(p.value()[0], expect[0] - 0.1 * 1.0 / (v0.sqrt() + 1e-8), max_relative = 1e-12);
    assert_relative_eq!(p.value()[1], expect[1], max_relative = 1e-12);
}

#[test]
fn elementwise_weight_decay_adds_wd_times_p() {
    let rule = RmspropRule::Elementwise { alpha: 0.5, eps: 1e-3, weight_decay: 0.1 };
    let mut opt = Rmsprop::new(0.01, rule).unwrap();
    let mut p = param(&[2.0], &[0.3]);
    step(&mut opt, &mut p);
    let g: f64 = 0.3 + 0.1 * 2.0;
    let v = 0.5 * g * g;
    assert_relative_eq!(p.value()[0], 2.0 - 0.01 * g / (v.sqrt() + 1e-3), max_relative = 1e-12);
}

#[test]
fn per_tensor_matches_the_recipe_by_hand() {
    let mut opt = Rmsprop::per_tensor(0.5, None).unwrap();
    let mut p = param(&[1.0, 2.0], &[3.0, 4.0]);
    step(&mut opt, &mut p);
    // g = 0.99·1 + 0.01·‖∂P‖² = 0.99 + 0.25 = 1.24; P -= 0.5/√(1.24 + 1e-3)·∂P
    let g: f64 = 0.99 + 0.01 * 25.0;
    let s = 0.5 / (g + 1e-3).sqrt();
    assert_relative_eq!(p.value()[0], 1.0 - s * 3.0, max_relative = 1e-12);
    assert_relative_eq!(p.value()[1], 2.0 - s * 4.0, max_relative = 1e-12);
    assert_relative_eq!(opt.mean_square_norms()[0], g, max_relative = 1e-12);
    assert_relative_eq!(opt.effective_learning_rates()[0], s, max_relative = 1e-12);
}

#[test]
fn per_tensor_keeps_one_g_per_tensor() {
    let mut opt = Rmsprop::per_tensor(0.1, None).unwrap();
    let mut a = param(&[0.0], &[1.0]);
    let mut b = param(&[0.0, 0.0], &[2.0, 2.0]);
    opt.begin_step();
    apply(&mut opt, 0, &mut a);
    apply(&mut opt, 1, &mut b);
    assert_relative_eq!(opt.mean_square_norms()[0], 0.99 + 0.01 * 1.0, max_relative = 1e-12);
    assert_relative_eq!(opt.mean_square_norms()[1], 0.99 + 0.01 * 8.0, max_relative = 1e-12);
}

#[test]
fn per_tensor_resets_g_every_k_steps() {
    let mut opt = Rmsprop::per_tensor(0.1, Some(3)).unwrap();
    let mut p = param(&[0.0], &[10.0]);
    let mut g = 1.0;
    for step_number in 1..=7 {
        if step_number == 4 || step_number == 7 {
            g = 1.0; // reset before steps 4 and 7
        }
        g = 0.99 * g + 0.01 * 100.0;
        step(&mut opt, &mut p);
        assert_relative_eq!(opt.mean_square_norms()[0], g, max_relative = 1e-12);
    }
    let mut no_reset = Rmsprop::per_tensor(0.1, None).unwrap();
    let mut q = param(&[0.0], &[10.0]);
    (0..4).for_each(|_| step(&mut no_reset, &mut q));
    assert!(no_reset.mean_square_norms()[0] > 4.0);
}

#[test]
fn bad_hyperparameters_are_rejected_at_construction() {
    let bad = |r: Result<Rmsprop<f64>, Error>, name: &str| match r {
        Err(Error::InvalidHyperparameter { name: n, .. }) => assert_eq!(n, name),
        other => panic!("expected {name} to be rejected, got {other:?}"),
    };
    bad(Rmsprop::elementwise(0.0), "learning rate");
    bad(Rmsprop::elementwise(-1.0), "learning rate");
    bad(Rmsprop::elementwise(f64::NAN), "learning rate");
    bad(Rmsprop::per_tensor(f64::INFINITY, None), "learning rate");
    bad(Rmsprop::per_tensor(0.5, Some(0)), "reset every");
    bad(Rmsprop::new(0.1, RmspropRule::Elementwise { alpha: 1.0, eps: 1e-8, weight_decay: 0.0 }), "alpha");
    bad(Rmsprop::new(0.1, RmspropRule::Elementwise { alpha: 0.9, eps: 0.0, weight_decay: 0.0 }), "eps");
    bad(
        Rmsprop::new(0.1, RmspropRule::Elementwise { alpha: 0.9, eps: 1e-8, weight_decay: -1.0 }),
        "weight decay",
    );
    bad(Rmsprop::new(0.1, RmspropRule::PerTensor { gamma: f64::NAN, eps: 1e-3, reset_every: None }), "gamma");
    let mut ok = Rmsprop::<f64>::elementwise(0.1).unwrap();
    assert!(ok.set_learning_rate(-0.1).is_err());
    assert_eq!(ok.learning_rate(), 0.1);
}

/// Long tensors go through the vectorized chunks and the parallel blocks (and a ragged tail):
/// still the rule, entry by entry, over several steps.
#[test]
fn long_tensors_follow_the_rules_entry_by_entry() {
    let n = 70_003;
    let values: Vec<f64> = (0..n).map(|i| ((i * 37 % 101) as f64 - 50.0) / 25.0).collect();
    let grads: Vec<f64> = (0..n).map(|i| ((i * 53 % 97) as f64 - 48.0) / 40.0).collect();
    let (lr, alpha, eps, wd) = (0.01, 0.9, 1e-6, 0.05);
    let rule = RmspropRule::Elementwise { alpha, eps, weight_decay: wd };
    let mut elementwise = Rmsprop::new(lr, rule).unwrap();
    let mut per_tensor = Rmsprop::per_tensor(lr, None).unwrap();
    let (mut p1, mut p2) = (param(&values, &grads), param(&values, &grads));
    let (mut expect1, mut expect2, mut v, mut g) = (values.clone(), values.clone(), vec![0.0; n], 1.0);
    for _ in 0..3 {
        step(&mut elementwise, &mut p1);
        step(&mut per_tensor, &mut p2);
        for i in 0..n {
            let d = grads[i] + wd * expect1[i];
            v[i] = alpha * v[i] + (1.0 - alpha) * d * d;
            expect1[i] -= lr * d / (v[i].sqrt() + eps);
        }
        g = 0.99 * g + 0.01 * grads.iter().map(|d| d * d).sum::<f64>();
        let s = lr / (g + 1e-3).sqrt();
        expect2.iter_mut().zip(&grads).for_each(|(p, d)| *p -= s * d);
    }
    for i in 0..n {
        assert_relative_eq!(p1.value()[i], expect1[i], max_relative = 1e-12);
        assert_relative_eq!(p2.value()[i], expect2[i], max_relative = 1e-12);
    }
}

/// `update_checked` flags a non-finite new value wherever it falls (here in the last of several
/// parallel blocks, and in the ragged tail), for both rules, and passes a finite update.
#[test]
fn update_checked_finds_a_bad_value_in_any_block() {
    let n = 200_003;
    let value: Vec<f32> = (0..n).map(|i| ((i % 17) as f32 - 8.0) * 0.01).collect();
    let good: Vec<f32> = (0..n).map(|i| ((i % 13) as f32 - 6.0) * 0.001).collect();
    let rules = [
        RmspropRule::Elementwise { alpha: 0.99, eps: 1e-8, weight_decay: 0.0 },
        RmspropRule::PerTensor { gamma: 0.99, eps: 1e-3, reset_every: None },
    ];
    for rule in rules {
        for bad_at in [n - 1, n - 20, n / 2, 3] {
            for bad in [f32::NAN, f32::INFINITY] {
                let mut opt = Rmsprop::new(0.01f32, rule).unwrap();
                let mut next = vec![0f32; n];
                opt.begin_step();
                assert!(opt.update_checked(0, &value, &good, &mut next), "{rule:?}: a finite update");
                let mut grad = good.clone();
                grad[bad_at] = bad;
                assert!(!opt.update_checked(1, &value, &grad, &mut next), "{rule:?}: {bad} at {bad_at}");
            }
        }
    }
}

/// An optimizer that implements only `update` gets the default check: a step to infinity is
/// caught and undone by `train_step` all the same.
#[test]
fn a_custom_optimizer_gets_the_default_check() {
    use feedforward::{Init, Network, Result as FfResult};
    struct Sgd(f32);
    impl Optimizer<f32> for Sgd {
        fn update(&mut self, _: usize, value: &[f32], grad: &[f32], next: &mut [f32]) {
            for ((n, &p), &g) in next.iter_mut().zip(value).zip(grad) {
                *n = p - self.0 * g;
            }
        }
        fn learning_rate(&self) -> f32 {
            self.0
        }
        fn set_learning_rate(&mut self, learning_rate: f32) -> FfResult<()> {
            self.0 = learning_rate;
            Ok(())
        }
    }
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
    let mut net = Network::<f32>::mlp(&[3, 5, 2], Init::He, true, &mut rng).unwrap();
    let x = DMatrix::from_fn(3, 4, |i, j| (i + 2 * j) as f32 * 0.3 - 1.0);
    let labels = [0, 1, 1, 0];
    assert!(net.train_step(&x, &SoftmaxCrossEntropy::new(), &labels, &mut Sgd(0.1)).is_ok());
    let before: Vec<_> = net.parameters().map(|p| p.value().clone()).collect();
    match net.train_step(&x, &SoftmaxCrossEntropy::new(), &labels, &mut Sgd(f32::INFINITY)) {
        Err(Error::NonFinite { step: Some(2), what, .. }) => {
            assert!(what.contains("updated value"), "{what}")
        }
        other => panic!("expected an overflow at step 2, got {other:?}"),
    }
    let after: Vec<_> = net.parameters().map(|p| p.value().clone()).collect();
    assert_eq!(before, after);
}

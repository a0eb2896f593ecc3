//! The default recipe on all of MNIST reaches at least 97.5% test accuracy.
//!
//! About 15 s in a release build, far too slow unoptimised: run it with
//! `cargo test --release --test mnist_release` (CI does).

use feedforward::SoftmaxCrossEntropy;
use feedforward::data::{self, Split};
use feedforward::recipe::Recipe;
use feedforward::train;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::Path;

#[test]
#[cfg_attr(debug_assertions, ignore = "needs a release build: cargo test --release --test mnist_release")]
fn default_recipe_reaches_97_5_percent() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let train_set = data::load_mnist(&dir, Split::Train).unwrap();
    let test_set = data::load_mnist(&dir, Split::Test).unwrap();
    let recipe = Recipe::Default;
    let mut net = recipe.network::<f32, _>(&mut StdRng::seed_from_u64(0)).unwrap();
    let mut opt = recipe.optimizer(None).unwrap();
    let config = recipe.train_config(recipe.default_epochs(), recipe.default_batch_size(), 0);
    let labels = train_set.labels().unwrap();
    train::fit(
        &mut net,
        &mut opt,
        &SoftmaxCrossEntropy::new(),
        train::Data::new(train_set.images(), labels),
        &config,
        |_, _, _| {},
    )
    .unwrap();
    let accuracy = net.accuracy(test_set.images(), test_set.labels().unwrap()).unwrap();
    eprintln!("default recipe test accuracy: {:.2}%", 100.0 * accuracy);
    assert!(accuracy >= 0.975, "test accuracy {accuracy}");
}

//! `Embedding`: its forward pass against a plain formula and against one-hot codes through a
//! layer, gradient checks, category indices that are not categories (in inference, in a step
//! and in `fit`, each named by its sample), the unknown category's zero vector, its settings,
//! model files, the same run on any thread count, and a recommender it learns.

use feedforward::gradcheck::{self, Config};
use feedforward::train::{self, Batching, TrainConfig};
use feedforward::{
    Activation, Adam, Embedding, EmbeddingRow, Error, Init, Layer, MeanSquaredError, Module, Network,
    Parameter, UnknownCategory,
};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// f64, central differences with h = 1e-5, error `|a − n| / max(|a|, |n|, 1e-4)` at most this.
const BOUND: f64 = 1e-6;

/// Five input rows: rows 1 and 3 are categories (4 and 3 of them), the others numbers.
fn rows() -> [EmbeddingRow; 2] {
    [EmbeddingRow { row: 3, categories: 3, dims: 2 }, EmbeddingRow { row: 1, categories: 4, dims: 3 }]
}

/// `samples` inputs for [`rows`]: numbers in rows 0, 2 and 4, category indices in rows 1 and 3.
fn inputs<T: feedforward::Float>(samples: usize, rng: &mut StdRng) -> DMatrix<T> {
    DMatrix::from_fn(5, samples, |i, _| match i {
        1 => T::lit(rng.random_range(0..4) as f64),
        3 => T::lit(rng.random_range(0..3) as f64),
        _ => T::lit(rng.random_range(-2.0..2.0)),
    })
}

#[test]
fn the_output_is_the_rows_passed_through_then_each_rows_vector() {
    let mut rng = StdRng::seed_from_u64(1);
    let e = Embedding::<f64>::new(5, &rows(), &mut rng).unwrap();
    assert_eq!((e.inputs(), e.outputs()), (5, 3 + 3 + 2));
    // Sorted by row: row 1's table, then row 3's.
    assert_eq!(e.rows().iter().map(|r| r.row).collect::<Vec<_>>(), [1, 3]);
    let names: Vec<&str> = e.tables().iter().map(Parameter::name).collect();
    assert_eq!(names, ["table1", "table3"]);
    assert_eq!((e.tables()[0].value().shape(), e.tables()[1].value().shape()), ((3, 4), (2, 3)));
    assert!(e.tables().iter().all(Parameter::is_regularized));
    let x = inputs::<f64>(7, &mut rng);
    let mut y = DMatrix::zeros(8, 7);
    e.forward(&x, &mut y);
    for j in 0..7 {
        let (user, item) = (x[(1, j)] as usize, x[(3, j)] as usize);
        let mut expected = vec![x[(0, j)], x[(2, j)], x[(4, j)]];
        expected.extend(e.tables()[0].value().column(user).iter());
        expected.extend(e.tables()[1].value().column(item).iter());
        assert_eq!(y.column(j).iter().copied().collect::<Vec<_>>(), expected, "sample {j}");
    }
}

/// The unknown category (index 6 of six, samples 6 and 13) is the all-zeros code.
#[test]
fn an_embedding_then_a_layer_is_a_one_hot_code_then_that_layer() {
    let mut rng = StdRng::seed_from_u64(2);
    let e = Embedding::<f64>::new(2, &[EmbeddingRow { row: 1, categories: 6, dims: 4 }], &mut rng)
        .unwrap()
        .with_unknown(UnknownCategory::ZeroVector);
    let layer = Layer::<f64>::new(5, 3, Init::He, &mut rng);
    let x = DMatrix::from_fn(2, 14, |i, j| if i == 0 { j as f64 * 0.3 - 1.0 } else { (j % 7) as f64 });
    let net = Network::new(2).push(e.clone()).unwrap().push(layer.clone()).unwrap();
    // One-hot: row 0, then six rows of 0/1; the layer's weights on them are table·W.
    let one_hot = DMatrix::from_fn(7, 14, |i, j| match i {
        0 => x[(0, j)],
        _ => f64::from(x[(1, j)] as usize == i - 1),
    });
    let w = layer.weight();
    let table = e.tables()[0].value();
    let mut w_one_hot = DMatrix::zeros(7, 3);
    w_one_hot.row_mut(0).copy_from(&w.row(0));
    w_one_hot.rows_mut(1, 6).copy_from(&(table.transpose() * w.rows(1, 4)));
    let b = layer.bias().unwrap().column(0).into_owned();
    let dense = Network::new(7).push(Layer::from_parts(w_one_hot, Some(b)).unwrap()).unwrap();
    let (a, b) = (net.output(&x).unwrap(), dense.output(&one_hot).unwrap());
    assert!((&a - &b).abs().max() <= 1e-12 * b.abs().max(), "{a} vs {b}");
}

#[test]
fn gradients_check_as_a_module_and_in_a_network() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut e = Embedding::<f64>::new(5, &rows(), &mut rng).unwrap();
    // 12 samples of 4 × 3 categories: some categories seen by several samples, summed.
    let x = inputs::<f64>(12, &mut rng);
    let config = Config::default();
    let report = gradcheck::check_module(&mut e, &x, &config).unwrap();
    assert_eq!(report.checked, 12 + 6 + 60, "both tables and every input entry");
    assert!(report.max_error <= BOUND, "{report}");
    // The index rows get no gradient: the input gradient there is exactly 0.
    let mut y = DMatrix::zeros(8, 12);
    e.forward(&x, &mut y);
    let mut dx = DMatrix::from_element(5, 12, 7.0);
    let dy = DMatrix::from_fn(8, 12, |i, j| (i * 12 + j) as f64);
    e.backward(&x, &y, &dy, Some(&mut dx));
    assert!(dx.row(1).iter().chain(dx.row(3).iter()).all(|&v| v == 0.0));
    assert_eq!(dx.row(2), dy.row(1), "row 2 passes through as the output's row 1");

    let mut net = Network::new(5)
        .push(Embedding::new(5, &rows(), &mut rng).unwrap())
        .unwrap()
        .push(Layer::new(8, 6, Init::He, &mut rng).with_activation(Activation::Tanh))
        .unwrap()
        .push(Layer::new(6, 2, Init::He, &mut rng))
        .unwrap()
        .with_l2(1e-3)
        .unwrap();
    let targets = DMatrix::from_fn(2, 12, |_, _| rng.random_range(-1.0..1.0));
    let report = gradcheck::check_network(&mut net, &x, &MeanSquaredError, &targets, &config).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
}

/// The error of an input whose sample 2 holds `bad` in row 3.
fn bad_input_error(bad: f64, mut check: impl FnMut(&DMatrix<f32>) -> Error) -> String {
    let mut x = inputs::<f32>(4, &mut StdRng::seed_from_u64(4));
    x[(3, 2)] = bad as f32;
    let error = check(&x);
    match &error {
        Error::InvalidInput { sample, row, .. } => assert_eq!((*sample, *row), (2, 3), "{error}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    error.to_string()
}

fn network(rng: &mut StdRng) -> Network<f32> {
    Network::new(5)
        .push(Embedding::new(5, &rows(), rng).unwrap())
        .unwrap()
        .push(Layer::new(8, 2, Init::He, rng))
        .unwrap()
}

#[test]
fn an_index_that_is_no_category_is_an_error_naming_its_sample_and_row() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut net = network(&mut rng);
    for bad in [3.0, -1.0, 0.5, 1e9, f64::NAN, f64::INFINITY] {
        let message = bad_input_error(bad, |x| net.output(x).unwrap_err());
        assert!(message.contains("0..3"), "{message}");
        bad_input_error(bad, |x| net.predict(x).unwrap_err());
        bad_input_error(bad, |x| net.forward(x).unwrap_err());
    }
    // A training step with such an input changes nothing.
    let before: Vec<DMatrix<f32>> = net.parameters().map(|p| p.value().clone()).collect();
    let mut adam = Adam::with_learning_rate(0.1).unwrap();
    let targets = DMatrix::zeros(2, 4);
    bad_input_error(2.5, |x| net.train_step(x, &MeanSquaredError, &targets, &mut adam).unwrap_err());
    let after: Vec<DMatrix<f32>> = net.parameters().map(|p| p.value().clone()).collect();
    assert_eq!(before, after);
    assert_eq!(net.steps(), 0);
    // A module after another checks the input it is given.
    let late = Network::<f32>::new(5)
        .push(feedforward::Relu)
        .unwrap()
        .push(Embedding::new(5, &rows(), &mut rng).unwrap())
        .unwrap();
    bad_input_error(7.0, |x| late.output(x).unwrap_err());
}

#[test]
fn fit_names_the_bad_sample_by_its_place_in_the_training_set() {
    let mut rng = StdRng::seed_from_u64(6);
    let mut net = network(&mut rng);
    let mut x = inputs::<f32>(300, &mut rng);
    x[(1, 217)] = 4.0;
    let y = DMatrix::zeros(2, 300);
    let mut adam = Adam::with_learning_rate(0.01).unwrap();
    let config = TrainConfig {
        epochs: 1,
        batching: Batching::Minibatch { size: 32, shuffle: true },
        ..TrainConfig::default()
    };
    let error =
        train::fit(&mut net, &mut adam, &MeanSquaredError, train::Data::new(&x, &y), &config, |_, _, _| {})
            .unwrap_err();
    assert!(matches!(error, Error::InvalidInput { sample: 217, row: 1, .. }), "{error}");
    assert_eq!(net.steps(), 0);

    // After another module, the embedding checks each minibatch: the sample is still named by
    // its place in the set, once the steps reach it.
    let mut late = Network::<f32>::new(5)
        .push(feedforward::Relu)
        .unwrap()
        .push(Embedding::new(5, &rows(), &mut rng).unwrap())
        .unwrap()
        .push(Layer::new(8, 2, Init::He, &mut rng))
        .unwrap();
    let error =
        train::fit(&mut late, &mut adam, &MeanSquaredError, train::Data::new(&x, &y), &config, |_, _, _| {})
            .unwrap_err();
    assert!(matches!(error, Error::InvalidInput { sample: 217, row: 1, .. }), "{error}");
}

/// With `UnknownCategory::ZeroVector`, index `categories` gives zeros, takes no gradient and is
/// never trained; one more is still an error, and without the setting so is `categories`.
#[test]
fn the_unknown_category_is_a_zero_vector_that_no_step_changes() {
    let mut rng = StdRng::seed_from_u64(11);
    let e = Embedding::<f64>::new(5, &rows(), &mut rng).unwrap().with_unknown(UnknownCategory::ZeroVector);
    assert_eq!(e.index_rows(), [1, 3]);
    let mut x = inputs::<f64>(12, &mut rng);
    // Samples 0–3 have an unknown user (index 4 of row 1), samples 2–5 an unknown item (3).
    (0..4).for_each(|j| x[(1, j)] = 4.0);
    (2..6).for_each(|j| x[(3, j)] = 3.0);
    e.check_input(&x).unwrap();
    let mut y = DMatrix::from_element(8, 12, 9.0);
    e.forward(&x, &mut y);
    for j in 0..12 {
        let (user, item) = (x[(1, j)] as usize, x[(3, j)] as usize);
        // Table t's column c, or zeros for the index one past its columns.
        let vector = |t: usize, c: usize| -> Vec<f64> {
            let table = e.tables()[t].value();
            match c == table.ncols() {
                true => vec![0.0; table.nrows()],
                false => table.column(c).iter().copied().collect(),
            }
        };
        let mut expected = vec![x[(0, j)], x[(2, j)], x[(4, j)]];
        expected.extend(vector(0, user));
        expected.extend(vector(1, item));
        assert_eq!(y.column(j).iter().copied().collect::<Vec<_>>(), expected, "sample {j}");
    }
    // The gradient checks hold with unknown categories among the samples, and the tables get
    // nothing from them: samples 2 and 3 have neither category known.
    let mut checked = e.clone();
    let report = gradcheck::check_module(&mut checked, &x, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
    let mut unknown_only = e.clone();
    let x2 = x.columns(2, 2).into_owned();
    let mut y2 = DMatrix::zeros(8, 2);
    unknown_only.forward(&x2, &mut y2);
    unknown_only.backward(&x2, &y2, &DMatrix::from_element(8, 2, 1.0), None);
    assert!(unknown_only.tables().iter().all(|t| t.grad().iter().all(|&g| g == 0.0)));

    // Trained on known and unknown categories, the unknown ones still give zeros.
    let mut net = Network::new(5).push(e).unwrap().push(Layer::new(8, 1, Init::He, &mut rng)).unwrap();
    let targets = DMatrix::from_fn(1, 12, |_, j| j as f64 / 6.0 - 1.0);
    let mut adam = Adam::with_learning_rate(0.05).unwrap();
    for _ in 0..20 {
        net.train_step(&x, &MeanSquaredError, &targets, &mut adam).unwrap();
    }
    let embedding = &net.modules()[0];
    let mut y = DMatrix::zeros(8, 12);
    embedding.forward(&x, &mut y);
    assert!(y.view((3, 2), (5, 2)).iter().all(|&v| v == 0.0), "{y}");

    // One past the unknown index is an error; without the setting, the unknown index is one.
    x[(3, 7)] = 4.0;
    let error = net.output(&x).unwrap_err();
    assert!(matches!(error, Error::InvalidInput { sample: 7, row: 3, .. }), "{error}");
    assert!(error.to_string().contains("0..3 (the row's categories), or 3 (an unknown one)"), "{error}");
    let refusing = Embedding::<f64>::new(5, &rows(), &mut rng).unwrap();
    assert_eq!(refusing.unknown(), UnknownCategory::Refuse);
    x[(3, 7)] = 1.0;
    let error = refusing.check_input(&x).unwrap_err();
    assert!(matches!(error, Error::InvalidInput { sample: 0, row: 1, .. }), "{error}");
}

/// `new` draws `N(0, 0.01²)`; `normal` any deviation, as that deviation times the same
/// standard normal draws.
#[test]
fn tables_are_drawn_at_the_deviation_asked() {
    let rows = [EmbeddingRow { row: 0, categories: 500, dims: 20 }];
    let draw = |std: Option<f64>| {
        let mut rng = StdRng::seed_from_u64(13);
        let e = match std {
            None => Embedding::<f64>::new(1, &rows, &mut rng).unwrap(),
            Some(std) => Embedding::normal(1, &rows, std, &mut rng).unwrap(),
        };
        e.tables()[0].value().clone()
    };
    assert_eq!(draw(None), draw(Some(Embedding::<f64>::STD)));
    assert_eq!(draw(Some(0.5)) * 2.0, draw(Some(1.0)));
    let table = draw(None);
    let deviation = (table.iter().map(|v| v * v).sum::<f64>() / table.len() as f64).sqrt();
    assert!((deviation / 0.01 - 1.0).abs() < 0.03, "{deviation}");
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = Embedding::<f32>::normal(1, &rows, bad, &mut StdRng::seed_from_u64(0)).unwrap_err();
        assert!(e.to_string().contains("Embedding std"), "{bad}: {e}");
    }
}

#[test]
fn bad_settings_are_errors() {
    let mut rng = StdRng::seed_from_u64(7);
    let new =
        |inputs, rows: &[EmbeddingRow]| Embedding::<f32>::new(inputs, rows, &mut StdRng::seed_from_u64(0));
    let row = |row, categories, dims| EmbeddingRow { row, categories, dims };
    assert!(new(3, &[]).unwrap_err().to_string().contains("at least one row"));
    assert!(new(3, &[row(3, 2, 2)]).unwrap_err().to_string().contains("row 3"));
    assert!(new(3, &[row(1, 2, 2), row(1, 3, 2)]).unwrap_err().to_string().contains("row 1 twice"));
    assert!(new(3, &[row(1, 0, 2)]).unwrap_err().to_string().contains("categories"));
    assert!(new(3, &[row(1, 2, 0)]).unwrap_err().to_string().contains("dims"));
    // f32 counts every whole number up to 2^24 exactly, not beyond; f64 further.
    // (2^24 + 2 and 2^24 + 4 are f32 values, the indices below them not.)
    for categories in [(1 << 24) + 1, (1 << 24) + 2, (1 << 24) + 3, (1 << 24) + 5] {
        assert!(new(3, &[row(1, categories, 1)]).unwrap_err().to_string().contains("2^24"), "{categories}");
    }
    assert!(new(3, &[row(1, 1 << 24, 1)]).is_ok());
    assert!(Embedding::<f64>::new(3, &[row(1, (1 << 24) + 2, 1)], &mut rng).is_ok());
    // The input must have the rows it was built for.
    assert!(Network::<f32>::new(4).push(new(3, &[row(1, 2, 2)]).unwrap()).is_err());
}

#[test]
fn a_model_file_keeps_the_embedding() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(8);
    let net = network(&mut rng);
    let path = dir.path().join("embedding.safetensors");
    net.save(&path).unwrap();
    let back = Network::<f32>::load(&path).unwrap();
    let x = inputs::<f32>(10, &mut rng);
    assert_eq!(back.output(&x).unwrap(), net.output(&x).unwrap());
    assert_eq!(format!("{:?}", back.modules()), format!("{:?}", net.modules()));

    // The unknown category's setting too; a setting of no known name is an error.
    let mut lenient = Network::<f32>::new(5);
    lenient
        .push_boxed(Box::new(
            Embedding::new(5, &rows(), &mut rng).unwrap().with_unknown(UnknownCategory::ZeroVector),
        ))
        .unwrap();
    lenient.save(&path).unwrap();
    let mut x = inputs::<f32>(3, &mut rng);
    x[(1, 1)] = 4.0;
    let back = Network::<f32>::load(&path).unwrap();
    assert_eq!(back.output(&x).unwrap(), lenient.output(&x).unwrap());
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata = metadata.metadata().clone().unwrap();
    let key = feedforward::weights::ARCHITECTURE_KEY.to_string();
    let architecture = metadata[&key].replace("\"zero_vector\"", "\"learned\"");
    assert_ne!(architecture, metadata[&key]);
    metadata.insert(key, architecture);
    let edited = safetensors::serialize(file.tensors(), Some(metadata)).unwrap();
    std::fs::write(&path, edited).unwrap();
    let error = Network::<f32>::load(&path).unwrap_err().to_string();
    assert!(error.contains("unknown is \"learned\""), "{error}");
}

#[test]
fn the_same_run_on_any_thread_count() {
    let run = |threads: usize| {
        feedforward::linalg::set_threads(threads);
        let mut rng = StdRng::seed_from_u64(9);
        let mut net = network(&mut rng);
        let x = inputs::<f32>(5000, &mut rng);
        let y = DMatrix::from_fn(2, 5000, |_, _| rng.random_range(-1.0f32..1.0));
        let mut adam = Adam::with_learning_rate(1e-2).unwrap();
        for _ in 0..3 {
            net.train_step(&x, &MeanSquaredError, &y, &mut adam).unwrap();
        }
        feedforward::linalg::set_threads(0);
        net.parameters().map(|p| p.value().clone()).collect::<Vec<_>>()
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

/// Ratings of 60 users for 40 items from hidden biases and tastes (`rating = bias(user) +
/// bias(item) + taste(user)·trait(item)`, 3 factors, plus noise of deviation 0.1), half the
/// pairs of users 0–49 for training: the network must predict the held-out pairs, which it can
/// only do through what the vectors learned of each user and item. Users 50–59 are new: with
/// their zero vectors (the unknown category), it must still predict better than the mean, from
/// what it learned of the items.
#[test]
fn it_learns_a_recommender_from_user_and_item_ids() {
    let mut rng = StdRng::seed_from_u64(10);
    let (users, items, known) = (60, 40, 50);
    let factors =
        |n: usize, rng: &mut StdRng| DMatrix::<f32>::from_fn(3, n, |_, _| rng.random_range(-1.0..1.0));
    let (taste, traits) = (factors(users, &mut rng), factors(items, &mut rng));
    let (user_bias, item_bias) = (factors(users, &mut rng), factors(items, &mut rng));
    let mut pairs: Vec<(usize, usize)> = (0..users).flat_map(|u| (0..items).map(move |i| (u, i))).collect();
    rand::seq::SliceRandom::shuffle(&mut pairs[..], &mut rng);
    let (new_pairs, pairs): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|&(u, _)| u >= known);
    let (train_pairs, test_pairs) = pairs.split_at(pairs.len() / 2);
    let data = |pairs: &[(usize, usize)], rng: &mut StdRng| {
        let x = DMatrix::from_fn(2, pairs.len(), |r, j| if r == 0 { pairs[j].0 } else { pairs[j].1 } as f32);
        let y = DMatrix::from_fn(1, pairs.len(), |_, j| {
            let (u, i) = pairs[j];
            user_bias[(0, u)]
                + item_bias[(0, i)]
                + taste.column(u).dot(&traits.column(i))
                + 0.1 * (rng.random::<f32>() - 0.5) * 12f32.sqrt()
        });
        (x, y)
    };
    let (x, y) = data(train_pairs, &mut rng);
    let (x_test, y_test) = data(test_pairs, &mut rng);
    let (mut x_new, y_new) = data(&new_pairs, &mut rng);
    // The index of an unknown user: one past the known ones.
    x_new.row_mut(0).fill(known as f32);
    let rows = [
        EmbeddingRow { row: 0, categories: known, dims: 16 },
        EmbeddingRow { row: 1, categories: items, dims: 16 },
    ];
    let embedding = Embedding::new(2, &rows, &mut rng).unwrap().with_unknown(UnknownCategory::ZeroVector);
    let mut net = Network::new(2)
        .push(embedding)
        .unwrap()
        .push(Layer::new(32, 64, Init::He, &mut rng).with_activation(Activation::Relu))
        .unwrap()
        .push(Layer::new(64, 1, Init::He, &mut rng))
        .unwrap();
    // No weight decay: the small vectors `Embedding::new` draws need none.
    let mut adam = Adam::with_learning_rate(3e-3).unwrap();
    let config = TrainConfig {
        epochs: 150,
        batching: Batching::Minibatch { size: 64, shuffle: true },
        ..TrainConfig::default()
    };
    train::fit(&mut net, &mut adam, &MeanSquaredError, train::Data::new(&x, &y), &config, |_, _, _| {})
        .unwrap();
    let rmse = |p: &DMatrix<f32>, y: &DMatrix<f32>| ((p - y).map(|v| v * v).mean()).sqrt();
    let mean = y.mean();
    let baseline = rmse(&DMatrix::from_element(1, y_test.ncols(), mean), &y_test);
    let learned = rmse(&net.output(&x_test).unwrap(), &y_test);
    eprintln!("held-out RMSE {learned:.3}, predicting the mean {baseline:.3}");
    // The biases alone leave the tastes' part, about 0.55 of the mean's error here: below 0.3,
    // the vectors learned how users and items interact too.
    assert!(learned < 0.3 * baseline, "held-out RMSE {learned} against {baseline} for the mean");
    let new_baseline = rmse(&DMatrix::from_element(1, y_new.ncols(), mean), &y_new);
    let new_learned = rmse(&net.output(&x_new).unwrap(), &y_new);
    eprintln!("new users: RMSE {new_learned:.3}, predicting the mean {new_baseline:.3}");
    // What can be known of a new user's rating is its item's part: about 0.82 of the mean's
    // error (the user's bias and taste are a third each of the variance).
    assert!(new_learned < 0.9 * new_baseline, "new users' RMSE {new_learned} against {new_baseline}");
}

/// Frozen vectors (pre-trained ones, say) stay as they are while the layers above them train,
/// and a frozen table's gradient is not computed; one table can be frozen alone.
#[test]
fn frozen_tables_stay_and_the_rest_trains() {
    let mut rng = StdRng::seed_from_u64(11);
    let mut net = network(&mut rng);
    let x = inputs::<f32>(64, &mut rng);
    let y = DMatrix::from_fn(2, 64, |_, _| rng.random_range(-1.0f32..1.0));
    let tables = |n: &Network<f32>| n.parameters().take(2).map(|p| p.value().clone()).collect::<Vec<_>>();
    let (before, layer_before) = (tables(&net), net.parameters().nth(2).unwrap().value().clone());
    net.freeze(0..1).unwrap();
    let mut adam = Adam::with_learning_rate(1e-2).unwrap();
    for _ in 0..5 {
        net.train_step(&x, &MeanSquaredError, &y, &mut adam).unwrap();
    }
    assert_eq!(tables(&net), before);
    assert_ne!(net.parameters().nth(2).unwrap().value(), &layer_before);
    // Only the second table frozen: the first trains.
    let mut net = network(&mut rng);
    let before = tables(&net);
    net.modules_mut()[0].visit_parameters_mut(&mut |p| {
        if p.name() == "table3" {
            p.freeze();
        }
    });
    let mut adam = Adam::with_learning_rate(1e-2).unwrap();
    net.train_step(&x, &MeanSquaredError, &y, &mut adam).unwrap();
    let after = tables(&net);
    assert!(after[0] != before[0] && after[1] == before[1]);
}

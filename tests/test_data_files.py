"""A user brings a CSV or NPZ file (data=file), or takes one of the small real data sets that
ship inside scikit-learn (data=diabetes, data=digits): the splits have the shapes and dtypes
a model needs, a seed always draws the same split, features are scaled by the train split
alone, and a bad file is one line and exit 2 before TensorFlow loads, with nothing written.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.check.errors import BadInput
from pipeline.check.preflight import check_command_line
from pipeline.data import DiabetesData, DigitsData, FileData
from pipeline.datasets.files import DataFileError
from tests.conftest import run_tbpipe

#: rows of the CSV file the tests write
ROWS = 50


def write_houses(folder: Path, rows: int = ROWS) -> tuple[Path, np.ndarray]:
    """houses.csv: columns id, sqft, rooms, price (price = 0.2 sqft + 10 rooms), grade (0-2);
    returns its path and its numbers (id, sqft, rooms, price, grade) as a float64 array."""
    rng = np.random.default_rng(7)
    ids = np.arange(rows, dtype=np.float64)
    sqft = rng.uniform(500, 2500, rows).round(1)
    rooms = rng.integers(1, 6, rows).astype(np.float64)
    price = (0.2 * sqft + 10 * rooms).round(2)
    grade = rng.integers(0, 3, rows).astype(np.float64)
    table = np.column_stack([ids, sqft, rooms, price, grade])
    path = folder / "houses.csv"
    lines = ["id,sqft,rooms,price,grade"] + [",".join(f"{v:g}" for v in row) for row in table]
    path.write_text("\n".join(lines) + "\n")
    return path, table


def test_a_csv_file_gives_float32_features_and_an_n_by_1_target(tmp_path):
    path, table = write_houses(tmp_path)
    data = FileData(path=str(path), target="price", features=["sqft", "rooms"]).generate()
    n_test = math.ceil(ROWS * 0.2)
    assert data.x_train.shape == (ROWS - n_test, 2) and data.x_test.shape == (n_test, 2)
    assert data.y_train.shape == (ROWS - n_test, 1) and data.y_test.shape == (n_test, 1)
    assert {a.dtype for a in (data.x_train, data.y_train, data.x_test, data.y_test)} == {
        np.dtype(np.float32)
    }
    assert data.k_true is None


def test_every_row_lands_in_exactly_one_split_with_its_own_target(tmp_path):
    path, table = write_houses(tmp_path)
    data = FileData(path=str(path), target="price", features=["id"], standardize=False).generate()
    ids = np.concatenate([data.x_train[:, 0], data.x_test[:, 0]]).astype(int)
    assert sorted(ids) == list(range(ROWS))
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        np.testing.assert_allclose(y[:, 0], table[x[:, 0].astype(int), 3].astype(np.float32))


def test_the_same_seed_draws_the_same_split_and_another_seed_another(tmp_path):
    path, _ = write_houses(tmp_path)

    def test_ids(seed: int) -> list[int]:
        data = FileData(
            path=str(path), target="price", features=["id"], seed=seed, standardize=False
        )
        return data.generate().x_test[:, 0].astype(int).tolist()

    assert test_ids(3) == test_ids(3)
    assert test_ids(3) != test_ids(4)


def test_standardize_uses_the_train_split_statistics_alone(tmp_path):
    path, table = write_houses(tmp_path)
    keys = dict(path=str(path), target="price", features=["sqft", "rooms"], seed=5)
    raw = FileData(**keys, standardize=False).generate()
    scaled = FileData(**keys, standardize=True).generate()
    mean, std = raw.x_train.astype(np.float64).mean(0), raw.x_train.astype(np.float64).std(0)
    np.testing.assert_allclose(scaled.x_train.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(scaled.x_train.std(0), 1, atol=1e-6)
    np.testing.assert_allclose(scaled.x_test, (raw.x_test - mean) / std, rtol=1e-5, atol=1e-6)
    assert not np.allclose(scaled.x_test.mean(0), 0, atol=1e-3)  # the test split's own stats differ
    np.testing.assert_array_equal(scaled.y_test, raw.y_test)  # the target keeps its units


def test_standardize_target_scales_a_regression_target_by_the_train_split(tmp_path):
    path, _ = write_houses(tmp_path)
    keys = dict(path=str(path), target="price", features=["sqft"])
    raw = FileData(**keys).generate()
    scaled = FileData(**keys, standardize_target=True).generate()
    mean, std = raw.y_train.astype(np.float64).mean(), raw.y_train.astype(np.float64).std()
    np.testing.assert_allclose(scaled.y_test, (raw.y_test - mean) / std, rtol=1e-5, atol=1e-5)


def test_class_labels_come_as_int32_of_shape_n(tmp_path):
    path, table = write_houses(tmp_path)
    data = FileData(path=str(path), target="grade", features=["sqft"], labels=True).generate()
    assert data.y_train.dtype == np.int32 and data.y_train.shape == (len(data.x_train),)
    assert set(np.concatenate([data.y_train, data.y_test])) == {0, 1, 2}


def test_a_relative_path_is_read_from_where_tbpipe_started(tmp_path, monkeypatch):
    write_houses(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert len(FileData(path="houses.csv", target="price").generate().x_train) == 40


def test_every_column_but_the_target_is_a_feature_by_default(tmp_path):
    path, _ = write_houses(tmp_path)
    data = FileData(path=str(path), target="price").generate()
    assert data.x_train.shape[1] == 4  # id, sqft, rooms, grade


def test_a_semicolon_csv_reads_with_its_delimiter(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("a;y\n" + "".join(f"{i};{2 * i}\n" for i in range(10)))
    data = FileData(path=str(path), target="y", delimiter=";", standardize=False).generate()
    np.testing.assert_array_equal(data.y_train[:, 0], 2 * data.x_train[:, 0])


def test_an_npz_file_of_images_keeps_their_shape(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.uniform(size=(30, 4, 4, 1)), rng.integers(0, 3, 30)
    np.savez(tmp_path / "images.npz", images=images, labels=labels)
    data = FileData(
        path=str(tmp_path / "images.npz"), target="labels", labels=True, standardize=False
    ).generate()
    assert data.x_train.shape == (24, 4, 4, 1) and data.x_test.shape == (6, 4, 4, 1)
    assert data.y_train.dtype == np.int32 and data.y_train.shape == (24,)


def test_several_npz_arrays_become_columns_side_by_side(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", a=rng.normal(size=20), b=rng.normal(size=(20, 3)), y=np.ones(20))
    data = FileData(path=str(tmp_path / "d.npz"), target="y", features=["a", "b"]).generate()
    assert data.x_train.shape == (16, 4) and data.y_train.shape == (16, 1)


def test_diabetes_is_a_regression_set_of_ten_features():
    data = DiabetesData(standardize_target=False).generate()
    assert data.x_train.shape == (353, 10) and data.x_test.shape == (89, 10)
    assert data.y_train.shape == (353, 1) and data.y_train.dtype == np.float32
    assert data.y_train.min() >= 25 and data.y_train.max() <= 346  # the raw progress measure
    scaled = DiabetesData().generate()
    np.testing.assert_allclose(scaled.y_train.mean(), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.x_train.std(0), 1, atol=1e-5)


def test_digits_are_a_classification_set_of_ten_labels():
    data = DigitsData().generate()
    assert data.x_train.shape == (1437, 64) and data.x_train.dtype == np.float32
    assert data.x_train.min() >= 0 and data.x_train.max() == 1
    assert data.y_train.shape == (1437,) and data.y_train.dtype == np.int32
    assert set(data.y_train) == set(range(10))
    images = DigitsData(shape="image").generate()
    assert images.x_test.shape == (360, 8, 8, 1)
    np.testing.assert_array_equal(images.x_train.reshape(-1, 64), data.x_train)


def test_without_scikit_learn_the_bundled_sets_say_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # what an environment without it imports
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInput) as refused:
        check_command_line(["data=digits"])
    assert str(refused.value) == (
        "data=digits needs scikit-learn, which ships the data set: pip install 'tbpipe[datasets]'"
    )
    with pytest.raises(ImportError, match=r"pip install 'tbpipe\[datasets\]'"):
        DiabetesData().generate()
    assert list(tmp_path.iterdir()) == []


def test_the_run_refuses_a_bad_file_with_the_preflight_s_own_line(tmp_path):
    """One reader for the check and the run: a file spoilt after the check fails alike."""
    path, _ = write_houses(tmp_path)
    with pytest.raises(DataFileError) as refused:
        FileData(path=str(path), target="prize").generate()
    with pytest.raises(BadInput) as checked:
        check_command_line(["data=file", f"data.path={path}", "data.target=prize"])
    assert str(refused.value) == str(checked.value)


def test_good_data_commands_pass_the_checks_and_write_nothing(tmp_path, monkeypatch):
    write_houses(tmp_path)
    monkeypatch.chdir(tmp_path)
    check_command_line(["data=file", "data.path=houses.csv", "data.target=price"])
    check_command_line(["data=file", "data.path=houses.csv", "data.target=grade",
                        "data.labels=true", "data.features=[sqft,rooms]"])  # fmt: skip
    check_command_line(["data=diabetes", "trainer.batch_size=32"])
    check_command_line(["-m", "data=digits", "data.shape=image", "seed=0,1"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["houses.csv"]


def test_a_sweep_over_files_is_refused_for_the_one_that_does_not_exist(tmp_path, monkeypatch):
    write_houses(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInput, match=r"^bad value data.path=gone.csv: no such file"):
        check_command_line(
            ["-m", "data=file", "data.path=houses.csv,gone.csv", "data.target=price"]
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["houses.csv"]


HOUSES = ["data.path=houses.csv", "data.target=price"]
BAD_FILES = {
    "no such file": (["data.path=nope.csv", "data.target=price"], "bad value data.path=nope.csv"),
    "no such column": ([*HOUSES, "data.target=prize"], "bad value data.target=prize: no column"),
    "text in a column": (["data.path=text.csv", "data.target=price"], "bad value data.features"),
    "too few rows": ([*HOUSES, "data.test_fraction=0.99"], "bad value data.test_fraction=0.99"),
    "labels no whole numbers": ([*HOUSES, "data.labels=true"], "bad value data.target=price"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_the_console_script_refuses_a_bad_file_in_one_line(case, tmp_path):
    write_houses(tmp_path)
    (tmp_path / "text.csv").write_text("sqft,city,price\n1200,Paris,250\n800,Lyon,180\n")
    overrides, start = BAD_FILES[case]
    given = ["data=file", *overrides]
    before = sorted(tmp_path.iterdir())
    result = run_tbpipe(*given, cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(f"tbpipe: {start}")
    assert result.stdout == ""
    assert sorted(tmp_path.iterdir()) == before  # no outputs/, no run dir


def test_the_extending_commands_for_a_data_file_pass_the_checks(tmp_path, monkeypatch):
    """docs/EXTENDING.md's `data=file` commands, on files of the shapes they name."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "EXTENDING.md").read_text()
    block = text.split("## Your data in a file", 1)[1].split("\n\n")[2]
    commands = [line.split("#")[0].split() for line in block.splitlines()]
    assert len(commands) == 3 and all(words[0] == "tbpipe" for words in commands)
    write_houses(tmp_path)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "digits.npz", images=rng.uniform(size=(20, 8, 8, 1)), y=np.arange(20))
    monkeypatch.chdir(tmp_path)
    for words in commands:
        check_command_line(words[1:])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.npz", "houses.csv"]


def test_the_bundled_sets_read_without_scikit_learn_equal_its_own_loader(monkeypatch):
    """DigitsData and DiabetesData read scikit-learn's bundled files with numpy (no
    scikit-learn import at a run's start): the same arrays as its loaders give."""
    import pipeline.data as data

    read = [data.DigitsData().generate(), data.DiabetesData().generate()]
    monkeypatch.setattr(data, "bundled_tables", lambda *names: None)  # scikit-learn's loader
    loaded = [data.DigitsData().generate(), data.DiabetesData().generate()]
    for ours, theirs in zip(read, loaded, strict=True):
        for name in ("x_train", "y_train", "x_test", "y_test"):
            mine, its = getattr(ours, name), getattr(theirs, name)
            assert mine.dtype == its.dtype and np.array_equal(mine, its), name

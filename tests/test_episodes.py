import pytest
import torch

from lecture_utils.characters import character_of, split_characters
from lecture_utils.episodes import EpisodeSampler, load_characters
from lecture_utils.characters import CharacterSet, with_rotations
from lecture_utils.omniglot import OMNIGLOT_ENV

DEFAULT_LINE = ("Data: Omniglot, the minimal background splits shipped in data/omniglot "
                "(train: 182 characters x 4 rotations = 728 classes, 20 drawings each).")


@pytest.fixture(scope="module")
def small_set():
    """8 made-up characters x 4 rotations = 32 classes x 10 drawings, every image distinct."""
    images = torch.rand(8, 10, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    images, names = with_rotations(images, [f"alphabet/character{i:02d}" for i in range(8)])
    return CharacterSet(images, names, source="test")


@pytest.fixture
def no_omniglot(monkeypatch):
    monkeypatch.delenv(OMNIGLOT_ENV, raising=False)


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def where_from(charset, images):
    """(class, drawing) of each image, found by exact pixel match."""
    lookup = {image.numpy().tobytes(): divmod(index, charset.drawings)
              for index, image in enumerate(charset.images.flatten(0, 1))}
    return [lookup[image.numpy().tobytes()] for image in images]


def test_episode_shapes_and_dtypes(small_set):
    batch = EpisodeSampler(small_set, n_way=5, k_shot=2, k_query=3).sample(4, generator())
    assert batch.x_spt.shape == (4, 10, 1, 28, 28) and batch.x_qry.shape == (4, 15, 1, 28, 28)
    assert batch.y_spt.shape == (4, 10) and batch.y_qry.shape == (4, 15)
    assert batch.y_spt.dtype == batch.y_qry.dtype == torch.long
    assert batch.x_spt.dtype == torch.float32


def test_labels_are_balanced_and_name_one_class_each(small_set):
    n, k, q = 5, 2, 3
    batch = EpisodeSampler(small_set, n, k, q).sample(6, generator(1))
    for t in range(6):
        assert torch.equal(torch.bincount(batch.y_spt[t], minlength=n), torch.full((n,), k))
        assert torch.equal(torch.bincount(batch.y_qry[t], minlength=n), torch.full((n,), q))
        support, query = where_from(small_set, batch.x_spt[t]), where_from(small_set, batch.x_qry[t])
        class_of_label = {}
        for label, (cls, _) in zip(batch.y_spt[t].tolist() + batch.y_qry[t].tolist(), support + query):
            assert class_of_label.setdefault(label, cls) == cls, "a label must name one class within a task"
        assert len(set(class_of_label.values())) == n, "different labels name different classes"
        assert len(set(support + query)) == n * (k + q), "no drawing is used twice in a task"


def test_label_order_and_example_order_are_shuffled(small_set):
    sampler = EpisodeSampler(small_set, n_way=5, k_shot=3, k_query=1)
    batch = sampler.sample(20, generator(2))
    first_class = {where_from(small_set, batch.x_spt[t][batch.y_spt[t] == 0][:1])[0][0] for t in range(20)}
    assert len(first_class) > 5, "label 0 is a different class from task to task"
    assert not all(torch.equal(y, y.sort().values) for y in batch.y_spt), "examples are not grouped by label"


def test_same_seed_same_episodes(small_set):
    sampler = EpisodeSampler(small_set, n_way=4, k_shot=1, k_query=2)
    first, again = sampler.sample(3, generator(9)), sampler.sample(3, generator(9), device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first.x_spt, sampler.sample(3, generator(10)).x_spt)


def test_n_way_larger_than_the_classes_available_is_rejected(small_set):
    with pytest.raises(ValueError, match=r"n_way=33 needs 33 classes, but this set has 32: choose n_way in 1\.\.32"):
        EpisodeSampler(small_set, n_way=33, k_shot=1, k_query=1)


def test_k_plus_query_larger_than_the_drawings_is_rejected(small_set):
    with pytest.raises(ValueError, match=r"k_shot \+ k_query = 5 \+ 6 = 11 .* only 10: keep k_shot \+ k_query <= 10"):
        EpisodeSampler(small_set, n_way=5, k_shot=5, k_query=6)


@pytest.mark.parametrize("n_way, k_shot, k_query, name", [(0, 1, 1, "n_way"), (5, 0, 1, "k_shot"),
                                                          (5, 1, -2, "k_query"), (5, 1.0, 1, "k_shot")])
def test_non_positive_counts_are_rejected(small_set, n_way, k_shot, k_query, name):
    with pytest.raises(ValueError, match=rf"{name} must be an integer >= 1"):
        EpisodeSampler(small_set, n_way, k_shot, k_query)


def test_sample_checks_its_arguments(small_set):
    sampler = EpisodeSampler(small_set, 5, 1, 1)
    with pytest.raises(ValueError, match="num_tasks must be an integer >= 1"):
        sampler.sample(0, generator())
    with pytest.raises(ValueError, match="CPU torch.Generator"):
        sampler.sample(2, generator=0)


def test_default_data_is_the_shipped_omniglot_with_one_stable_line(no_omniglot, capsys):
    train = load_characters("train")
    assert capsys.readouterr().out == DEFAULT_LINE + "\n"
    assert train.source == "omniglot-minimal" and train.images.shape == (728, 20, 1, 28, 28)
    val, test = load_characters("val", verbose=False), load_characters("test", verbose=False)
    assert capsys.readouterr().out == ""
    characters = [{character_of(name) for name in split.names} for split in (train, val, test)]
    assert not (characters[0] & characters[1] or characters[0] & characters[2] or characters[1] & characters[2])
    assert [len(c) for c in characters] == [182, 24, 36]
    assert (len(train), len(val), len(test)) == (728, 96, 144)


def test_unknown_split_is_rejected(no_omniglot):
    with pytest.raises(ValueError, match=r"unknown split 'training'; choose one of train, val, test"):
        load_characters("training")


def test_root_without_archives_says_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"No Omniglot archive in .*images_background\.zip.*download_omniglot"):
        load_characters(root=str(tmp_path))
    monkeypatch.setenv(OMNIGLOT_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=rf"unset \${OMNIGLOT_ENV} to use the Omniglot archives shipped"):
        load_characters()


def test_split_keeps_rotations_together_and_accepts_counts(small_set):
    splits = split_characters(small_set, (4, 2, 1), seed=0)
    assert [len(splits[name]) for name in ("train", "val", "test")] == [16, 8, 4]
    for split in splits.values():
        for name in split.names:
            assert sum(character_of(other) == character_of(name) for other in split.names) == 4
    assert split_characters(small_set, (4, 2, 1), seed=0)["val"].names == splits["val"].names
    assert split_characters(small_set, (4, 2, 1), seed=1)["val"].names != splits["val"].names


@pytest.mark.parametrize("sizes, message", [
    ((5, 2, 2), r"ask for 9 characters, but the set has only 8"),
    ((0.5, 0.5, 0.5), r"fractions in \[0, 1\] that sum to 1"),
    ((6, -1, 1), r"the val size must be an integer >= 0"),
    ((0.8, 0.2), r"three numbers \(train, val, test\)"),
])
def test_bad_split_sizes_are_rejected(small_set, sizes, message):
    with pytest.raises(ValueError, match=message):
        split_characters(small_set, sizes)


@pytest.mark.cuda
def test_same_seed_gives_the_same_episodes_on_the_gpu(small_set):
    sampler = EpisodeSampler(small_set, n_way=5, k_shot=1, k_query=3)
    cpu, gpu = sampler.sample(4, generator(4)), sampler.sample(4, generator(4), device="cuda")
    assert gpu.x_spt.is_cuda and gpu.y_qry.is_cuda
    assert all(torch.equal(a, b.cpu()) for a, b in zip(cpu, gpu))

"""Protein training data: whole proteins with <cls>/<eos>, windows for long ones, length buckets, splits."""

import random
from importlib import resources

import pytest
import torch
from protein_family import CANONICAL, fasta_text, make_family

from discrete_diff.errors import UserInputError
from discrete_diff.protein.batching import length_bucket_batches
from discrete_diff.protein.fasta import ProteinRecord
from discrete_diff.protein.identity import close_to_any, common_residues, identity
from discrete_diff.specs import build
from discrete_diff.training.data import SequenceDataModule
from discrete_diff.training.protein_data import LengthBuckets, ProteinDataModule, split_records

CLS, PAD, EOS = 0, 1, 2


def random_proteins(count, low, high, seed=0):
    rng = random.Random(seed)
    return ["".join(rng.choice(CANONICAL) for _ in range(rng.randint(low, high))) for _ in range(count)]


@pytest.fixture
def fasta(tmp_path):
    path = tmp_path / "set.fasta"
    path.write_text(fasta_text(random_proteins(80, 5, 40)))
    return path


def ready(*args, **kwargs) -> ProteinDataModule:
    """A data module after the Trainer's calls: prepare_data (fetching) and setup (reading)."""
    data = ProteinDataModule(*args, **kwargs)
    data.prepare_data()
    data.setup("fit")
    return data


def test_each_example_is_one_protein_between_cls_and_eos(fasta):
    data = ready(str(fasta), max_length=64, batch_size=8, val_fraction=0.2)
    residues = {tuple(p) for p in data.proteins["validation"]}
    seen = 0
    for batch in data.val_dataloader():
        for row, mask in zip(batch.input_ids.tolist(), batch.attention_mask.tolist(), strict=True):
            real = row[: sum(mask)]
            assert real[0] == CLS and real[-1] == EOS and set(row[sum(mask) :]) <= {PAD}
            assert tuple(real[1:-1]) in residues  # never packed: exactly one whole protein
            seen += 1
        assert not batch.maskable[batch.input_ids <= EOS].any()  # specials and padding never masked
    assert seen == len(data.validation_records)


def test_long_proteins_are_cropped_randomly_in_training_and_from_the_start_in_validation(tmp_path):
    path = tmp_path / "long.fasta"
    path.write_text(fasta_text(random_proteins(20, 100, 100, seed=1)))
    data = ready(str(path), max_length=16, batch_size=4, val_fraction=0.2)
    protein = data.proteins["train"][0]
    train = data.train_dataloader()
    windows = train.dataset.dataset
    full = [CLS, *protein, EOS]
    starts = set()
    for epoch in range(20):  # each epoch's plan draws every protein's crop afresh
        crop = dict(key for batch in train.sampler.plan.batches(0, epoch) for key in batch)[0]
        window = windows[(0, crop)].tolist()
        matches = [s for s in range(len(full) - 15) if full[s : s + 16] == window]
        assert len(window) == 16 and matches  # a true window: <cls>/<eos> only where the protein starts/ends
        starts.add(matches[0])
    assert len(starts) > 3
    validation = data.val_dataloader().dataset.dataset
    assert validation[0].tolist() == [CLS, *data.proteins["validation"][0][:15]]


def test_training_batches_are_length_homogeneous_and_cover_every_protein_once():
    lengths = [random.Random(i).randint(3, 300) for i in range(400)]
    batches = length_bucket_batches(lengths, batch_size=8, generator=torch.Generator().manual_seed(0))
    indices = [i for batch in batches for i, _ in batch]
    assert sorted(indices) == list(range(400)) and len(batches) == len(LengthBuckets(lengths, 8, shuffle=True))
    padded = sum(len(b) * max(lengths[i] for i, _ in b) for b in batches)
    assert padded / sum(lengths) < 1.05  # random batches of 8 from 3..300 would pad to about 1.6x
    assert length_bucket_batches(lengths, batch_size=8, generator=torch.Generator().manual_seed(1)) != batches


def test_split_is_deterministic_order_free_and_keeps_duplicates_together():
    seqs = random_proteins(50, 10, 20, seed=2)
    records = [ProteinRecord(f"r{i}", f"r{i}", s) for i, s in enumerate(seqs + seqs[:5])]
    train, validation = split_records(records, 0.2)
    again_train, again_validation = split_records(list(reversed(records)), 0.2)
    assert {r.id for r in validation} == {r.id for r in again_validation}
    assert not {r.sequence for r in train} & {r.sequence for r in validation}
    assert 8 <= len(validation) <= 14


def test_identity_split_keeps_near_duplicates_on_one_side():
    families = [make_family(6, length=50, mutation_rate=0.1, seed=s) for s in range(10)]
    records = [ProteinRecord(f"f{f}_{i}", "", s) for f, family in enumerate(families) for i, s in enumerate(family)]
    train, validation = split_records(records, 0.2, identity_threshold=0.6)
    held_families = {r.id.split("_")[0] for r in validation}
    assert held_families and not held_families & {r.id.split("_")[0] for r in train}
    plain_train, plain_validation = split_records(records, 0.2)
    assert {r.id.split("_")[0] for r in plain_validation} & {r.id.split("_")[0] for r in plain_train}


def test_one_large_cluster_never_takes_the_held_out_set():
    """A family with one dominant subfamily (a real halorhodopsin set: ~85 of 100 in one 50%-identity cluster) must
    still hold out about val_fraction of its records; a cluster that would take the held-out set past twice its
    target is passed over."""
    for seed in range(8):
        giant = make_family(40, length=50, mutation_rate=0.1, seed=seed)
        records = [ProteinRecord(f"g{i}", "", s) for i, s in enumerate(giant)]
        records += [ProteinRecord(f"s{i}", "", s) for i, s in enumerate(random_proteins(10, 40, 60, seed=seed))]
        train, validation = split_records(records, 0.1, identity_threshold=0.5)  # target: 5 held out
        assert 1 <= len(validation) <= 10 and not any(r.id.startswith("g") for r in validation)
        assert len(train) >= 40


def test_description_holds_lengths_and_rebuilds_the_same_data(fasta):
    data = ready(str(fasta), max_length=64, batch_size=8)
    described = data.description()
    lengths = described["lengths"]
    assert sum(lengths["count"]) == len(data.train_records) and described["max_length"] == 64
    assert lengths["length"] == sorted({len(r.sequence) for r in data.train_records})
    rebuilt = build(described["datamodule"], SequenceDataModule)
    rebuilt.setup("validate")
    assert [r.id for r in rebuilt.validation_records] == [r.id for r in data.validation_records]
    assert data.tokens_per_unit() == 1.0 and data.domain.unit == "residue"


def test_nothing_is_read_before_setup(tmp_path):
    """The constructor checks arguments only: a missing file is found by prepare_data/setup, not by --help."""
    data = ProteinDataModule(str(tmp_path / "later.fasta"), max_length=64)
    (tmp_path / "later.fasta").write_text(fasta_text(random_proteins(10, 5, 9)))
    data.setup("fit")
    assert len(data.train_records) + len(data.validation_records) == 10


def test_bad_options_are_user_errors(fasta):
    with pytest.raises(UserInputError, match="data.max_length must be at least 3"):
        ProteinDataModule(str(fasta), max_length=2)
    with pytest.raises(UserInputError, match="data.split_identity must be in"):
        ProteinDataModule(str(fasta), split_identity=1.5)
    with pytest.raises(UserInputError, match="FASTA file not found"):
        ready(str(fasta.parent / "missing.fasta"))


def real_family_fasta(folder):
    """Every fourth adenovirus fiber domain of pyfamsa's test data (a dependency): 61 proteins of a real family."""
    text = (resources.files("pyfamsa.tests.data") / "adeno_fiber.faa").read_text()
    path = folder / "adeno_fiber.faa"
    path.write_text("".join(">" + record for record in text.split(">")[1::4]))
    return path


def test_identity_split_of_a_real_family_holds_out_no_protein_close_to_a_training_one(tmp_path):
    path = real_family_fasta(tmp_path)
    data = ready(str(path), val_fraction=0.1, split_identity=0.5)
    train = [r.sequence for r in data.train_records]
    held_out = [r.sequence for r in data.validation_records]
    assert len(held_out) >= 5 and len(train) >= 30  # a real split, not an empty side
    assert max(identity(h, t) for h in held_out for t in train) < 0.5
    plain = ready(str(path), val_fraction=0.1)
    plain_train = [r.sequence for r in plain.train_records]
    assert max(identity(h, t) for h in (r.sequence for r in plain.validation_records) for t in plain_train) >= 0.5
    again_train, again_held_out = split_records(list(reversed(data.read_records())), 0.1, identity_threshold=0.5)
    assert sorted(r.id for r in again_held_out) == sorted(r.id for r in data.validation_records)
    assert sorted(r.id for r in again_train) == sorted(r.id for r in data.train_records)


def test_common_residues_bound_identity_and_close_to_any_is_exact():
    assert common_residues("ABCBDAB", "BDCABA") == 4 and common_residues("AAAA", "AA") == 2
    family = make_family(8, length=40, mutation_rate=0.3, seed=3)
    strangers = make_family(3, length=40, mutation_rate=1.0, seed=4)  # independent random sequences
    for a in family + strangers:
        for b in family + strangers:
            assert common_residues(a, b) >= identity(a, b) * min(len(a), len(b)) - 1e-9
    queries = family[:3] + strangers
    flags = close_to_any(queries, family[3:], 0.5)
    assert flags == [max(identity(q, r) for r in family[3:]) >= 0.5 for q in queries] == [True] * 3 + [False] * 3


def labelled_fasta(path, counts: dict[str, int]):
    proteins = random_proteins(sum(counts.values()), 20, 60, seed=5)
    labels = [label for label, count in counts.items() for _ in range(count)]
    records = enumerate(zip(proteins, labels, strict=True))
    path.write_text("".join(f">p{i} family={label}\n{s}\n" for i, (s, label) in records))
    return path


@pytest.mark.parametrize("balance, small_share", [(0.0, 0.1), (0.5, 10**0.5 / (90**0.5 + 10**0.5)), (1.0, 0.5)])
def test_label_balance_draws_each_label_in_proportion_to_its_count_to_the_one_minus_beta(
    tmp_path, balance, small_share
):
    """A label's share of the training draws is n^(1 - beta) / sum n^(1 - beta): 0.1 for 10 of 100 at beta 0, 0.5 at
    beta 1; an epoch keeps the set's size, and its draws are a function of (seed, epoch)."""
    path = labelled_fasta(tmp_path / "labelled.fasta", {"large": 90, "small": 10})
    data = ready(str(path), max_length=64, batch_size=10, val_fraction=0.01, label_field="family",
                 label_balance=balance)  # fmt: skip
    small = data.vocabulary.ids(["small"])[0]
    loader = data.train_dataloader()
    epochs = [torch.cat([batch.class_labels for batch in _epoch(loader, epoch)]) for epoch in range(20)]
    assert {len(labels) for labels in epochs} == {len(data.train_records)}  # an epoch keeps the set's size
    share = (torch.cat(epochs) == small).double().mean().item()
    assert share == pytest.approx(small_share, abs=0.035)
    plan = loader.sampler.plan
    assert plan.batches(0, 3) == plan.batches(0, 3) and plan.batches(0, 3) != plan.batches(0, 4)


def _epoch(loader, epoch: int):
    loader.sampler.set_epoch(epoch)
    return iter(loader)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"label_balance": 1.5, "label_field": "family"}, "data.label_balance must be in [0, 1], got 1.5"),
     ({"label_balance": 0.5}, "data.label_balance balances labels: give data.labels or data.label_field too")],
)  # fmt: skip
def test_bad_label_balance_is_a_clear_error(tmp_path, kwargs, message):
    with pytest.raises(UserInputError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        ProteinDataModule(str(tmp_path / "x.fasta"), **kwargs)

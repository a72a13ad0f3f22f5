"""Labels in the data: text documents labelled by a field, a sub-folder or a CSV; a block takes the label of most of
its tokens; proteins labelled by their file or a header field; bad label sources are one-line errors."""

import hashlib
import json

import numpy as np
import pytest
import torch
from conftest import SONNETS
from text_data import ready_text_data

from discrete_diff.errors import InvalidArgument, UserInputError
from discrete_diff.labels import LabelVocabulary
from discrete_diff.text.sources import corpus_fingerprint, find_documents
from discrete_diff.text.tokenizers import CharacterTokenizer
from discrete_diff.token_cache import SplitInfo, block_labels
from discrete_diff.training.protein_data import ProteinDataModule

LINES = SONNETS.splitlines(keepends=True)


def write_works(folder, names, repeat=2):
    for index, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(LINES[index % 14 :] + LINES[: index % 14]) * repeat, encoding="utf-8")


def batch_labels(data, split="train"):
    loader = data.train_dataloader() if split == "train" else data.val_dataloader()
    batches = list(loader)
    return torch.cat([b.class_labels for b in batches]), torch.cat([b.input_ids for b in batches])


def test_the_vocabulary_names_labels_in_order_and_refuses_unknown_ones():
    vocabulary = LabelVocabulary.from_values(["tragedy", "comedy", 3, "comedy"])
    assert vocabulary.names == ("3", "comedy", "tragedy") and vocabulary.null_id == 3
    assert vocabulary.id_of("tragedy") == 2 and vocabulary.id_of(3) == 0
    with pytest.raises(InvalidArgument, match="label 'farce' is unknown; known labels: 3, comedy, tragedy"):
        vocabulary.id_of("farce")


def test_a_block_takes_the_label_holding_most_of_its_tokens():
    # documents (end, label): [0, 10) 0, [10, 13) 0, [13, 30) 1, [30, 34) 2, [34, 40) 1
    documents = np.array([[10, 0], [13, 0], [30, 1], [34, 2], [40, 1]])
    labels = block_labels(documents, SplitInfo(start=2, end=40, characters=0, scored_tokens=0), length=8)
    # blocks [2, 10): all 0; [10, 18): 3 of 0, 5 of 1; [18, 26): all 1; [26, 34): 4 of 1, 4 of 2, a tie that goes to
    # the label met first; [34, 40) is a partial block, dropped as TokenBlocks drops it
    assert labels.tolist() == [0, 1, 1, 1]


ALPHABETS = {"comedy": "abc", "poetry": "mn", "tragedy": "xyz"}
"""Each genre's works are written in letters of their own, so a block's genre can be read off its text."""


def test_sub_folders_label_text_files_and_every_block_carries_its_label(tmp_path):
    corpus = tmp_path / "corpus"
    for name, size in [("comedy/a.txt", 900), ("comedy/b.txt", 50), ("tragedy/c.txt", 700), ("tragedy/d.txt", 30),
                       ("poetry/e.txt", 400), ("comedy/f.txt", 20), ("poetry/g.txt", 25)]:  # fmt: skip
        letters = ALPHABETS[name.split("/")[0]]
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_text("".join(letters[i % len(letters)] for i in range(size)))
    data = ready_text_data(str(corpus), tokenizer=CharacterTokenizer(), max_length=16, label_folders=True,
                           val_fraction=0.3)  # fmt: skip
    names = data.label_vocabulary().names
    assert names == ("comedy", "poetry", "tragedy") and data.description()["labels"] == list(names)
    for split in ("train", "validation"):
        labels, ids = batch_labels(data, split)
        for row, label in zip(ids, labels.tolist(), strict=True):
            text = data.tokenizer.decode(row.tolist())
            counts = {genre: sum(text.count(c) for c in letters) for genre, letters in ALPHABETS.items()}
            assert counts[names[label]] == max(counts.values())  # the label of most of the block's tokens


def test_a_csv_labels_files_and_a_relative_one_is_found_in_the_corpus_folder(tmp_path):
    corpus = tmp_path / "corpus"
    write_works(corpus, ["a.txt", "b.txt", "sub/c.txt"])
    (corpus / "labels.csv").write_text("file,label\na.txt,x\nb.txt,y\nsub/c.txt,x\n")
    data = ready_text_data(str(corpus), max_length=32, label_csv="labels.csv")
    assert data.label_vocabulary().names == ("x", "y")
    labels, _ = batch_labels(data)
    assert set(labels.tolist()) <= {0, 1}


def test_relabelling_rebuilds_the_cache_and_an_unlabelled_corpus_keeps_its_key(tmp_path):
    corpus = tmp_path / "corpus"
    write_works(corpus, ["a.txt", "b.txt", "c.txt"])
    plain = ready_text_data(str(corpus), max_length=32)
    again = ready_text_data(str(corpus), max_length=32, label_field=None)
    assert plain.cache == again.cache and plain.label_vocabulary() is None
    # The key an unlabelled corpus always had (content, tokenizer, split): existing caches stay valid.
    key = f"{corpus_fingerprint(find_documents(corpus))}|{CharacterTokenizer().describe()}|0.1"
    assert plain.cache.name == hashlib.sha256(key.encode()).hexdigest()[:20]
    (tmp_path / "one.csv").write_text("a.txt,x\nb.txt,y\nc.txt,x\n")
    (tmp_path / "two.csv").write_text("a.txt,x\nb.txt,x\nc.txt,y\n")
    one = ready_text_data(str(corpus), max_length=32, label_csv=str(tmp_path / "one.csv"))
    two = ready_text_data(str(corpus), max_length=32, label_csv=str(tmp_path / "two.csv"))
    assert len({plain.cache, one.cache, two.cache}) == 3


def test_jsonl_labels_reach_the_batches(tmp_path):
    path = tmp_path / "corpus.jsonl"
    records = [{"text": SONNETS[i * 40 : i * 40 + 300], "genre": "ab"[i % 2]} for i in range(12)]
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    data = ready_text_data(str(path), max_length=32, label_field="genre", val_fraction=0.2)
    labels, _ = batch_labels(data)
    assert data.label_vocabulary().names == ("a", "b") and set(labels.tolist()) == {0, 1}


@pytest.mark.parametrize(
    "files, options, message",
    [
        (["a.txt", "b/c.txt"], {"label_folders": True}, "a.txt sits at the top of"),
        (["a.txt"], {"label_csv": "missing.csv"}, "label_csv missing.csv: file not found"),
        (["a.txt", "b.txt"], {"label_csv": "labels.csv", "csv": "a.txt,x\n"}, "gives no label for 'b.txt'"),
        (["a.txt"], {"label_csv": "labels.csv", "csv": "a.txt,x\nz.txt,y\n"}, "names 'z.txt', which is not a file"),
        (["a.txt"], {"label_csv": "labels.csv", "csv": "a.txt,x,extra\n"}, "labels.csv:1: expected two columns"),
        (
            ["a.txt"],
            {"label_csv": "labels.csv", "csv": "a.txt,x\na.txt,y\n"},
            "labels.csv:2: 'a.txt' is labelled twice",
        ),
        (["a.txt"], {"label_folders": True, "label_field": "y"}, "choose one label source"),
    ],
)
def test_bad_label_sources_are_one_line_errors(tmp_path, files, options, message):
    corpus = tmp_path / "corpus"
    write_works(corpus, files)
    if "csv" in options:
        (corpus / "labels.csv").write_text(options.pop("csv"))
    with pytest.raises(UserInputError, match=message):
        ready_text_data(str(corpus), max_length=32, **options)


FAMILY_A = [
    "MKVLAAGWWCEEKLRSTNPQDYHF",
    "MKVLAAGWWCEEKLRSTNPQDYHW",
    "MKVLSAGWWCEEKLRSTNPQDYHF",
    "MKVLAAGWWCEDKLRSTNPQDYHF",
]
FAMILY_B = ["GHHHPPEEDDKKRRSTTNQ", "GHHHPPEEDDKKRRSTTNA", "GHHHPPEEDEKKRRSTTNQ", "GHHHPAEEDDKKRRSTTNQ"]


def fasta(sequences, prefix, field=None):
    extra = f" family={field}" if field else ""
    return "".join(f">{prefix}{i}{extra}\n{s}\n" for i, s in enumerate(sequences))


def protein_labels(data):
    batches = list(data.train_dataloader()) + list(data.val_dataloader())
    pairs = []
    for batch in batches:
        for row, label in zip(batch.input_ids, batch.class_labels.tolist(), strict=True):
            text = data.tokenizer.decode(row.tolist()).replace(" ", "")
            pairs.append((text.removeprefix("<cls>").split("<")[0], label))
    return pairs, data.label_vocabulary()


def check_family_labels(data):
    pairs, vocabulary = protein_labels(data)
    assert vocabulary.names == ("a", "b") and len(pairs) == 8
    for sequence, label in pairs:
        assert sequence in (FAMILY_A if vocabulary.names[label] == "a" else FAMILY_B)


def test_proteins_labelled_by_file(tmp_path):
    (tmp_path / "a.fasta").write_text(fasta(FAMILY_A, "a"))
    (tmp_path / "b.fasta").write_text(fasta(FAMILY_B, "b"))
    data = ProteinDataModule(labels={"a": str(tmp_path / "a.fasta"), "b": str(tmp_path / "b.fasta")}, batch_size=4,
                             max_length=32, val_fraction=0.25)  # fmt: skip
    data.prepare_data()
    data.setup("fit")
    check_family_labels(data)
    assert data.description()["labels"] == ["a", "b"]


def test_proteins_labelled_by_a_header_field(tmp_path):
    path = tmp_path / "all.fasta"
    path.write_text(fasta(FAMILY_A, "a", "a") + fasta(FAMILY_B, "b", "b"))
    data = ProteinDataModule(corpus=str(path), label_field="family", batch_size=4, max_length=32, val_fraction=0.25)
    data.prepare_data()
    data.setup("fit")
    check_family_labels(data)


def test_a_record_without_the_header_field_is_named(tmp_path):
    path = tmp_path / "all.fasta"
    path.write_text(fasta(FAMILY_A, "a", "a") + fasta(FAMILY_B, "b"))
    data = ProteinDataModule(corpus=str(path), label_field="family")
    with pytest.raises(UserInputError, match="record 'b0' has no family=VALUE field in its header"):
        data.setup("fit")
    with pytest.raises(UserInputError, match="give no data.corpus or label_field"):
        ProteinDataModule(corpus=str(path), labels={"a": str(path)})

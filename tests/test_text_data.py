import json

import numpy as np
import pytest
import torch
from text_data import ready_text_data

from discrete_diff.errors import UserInputError
from discrete_diff.text.sources import CHUNK_BYTES, find_documents, split_documents
from discrete_diff.text.tokenizers import ByteLevelBPETokenizer, CharacterTokenizer


def test_directory_jsonl_and_txt_sources(tmp_path):
    (tmp_path / "a.txt").write_text("alpha\n")
    records = [{"text": "beta"}, {"text": "gamma", "id": 3}]
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    documents = find_documents(tmp_path)
    assert [d.name for d in documents] == ["a.txt", "b.jsonl:1", "b.jsonl:2"]
    assert ["".join(d.chunks()) for d in documents] == ["alpha\n", "beta", "gamma"]


def test_a_file_of_one_long_line_is_read_in_bounded_chunks(tmp_path):
    path = tmp_path / "one_line.txt"
    text = "word " * (3 * CHUNK_BYTES // 5) + "x" * (2 * CHUNK_BYTES)  # no line end; then no space either
    path.write_text(text)
    chunks = list(find_documents(path)[0].chunks())
    assert "".join(chunks) == text and len(chunks) >= 3
    assert max(map(len, chunks)) <= 2 * CHUNK_BYTES + 5
    assert all(chunk.endswith("word") for chunk in chunks[:2])  # cut before a space while there are spaces


def test_split_holds_out_whole_documents_deterministically(tmp_path):
    for i in range(20):
        (tmp_path / f"w{i}.txt").write_text(f"work {i}\n")
    documents = find_documents(tmp_path)
    train, val = split_documents(documents, 0.1)
    assert len(val) == 2 and not {d.name for d in train} & {d.name for d in val}
    assert sorted(d.name for d in split_documents(list(reversed(documents)), 0.1)[1]) == sorted(d.name for d in val)


def test_blocks_come_from_the_cached_memory_map(small_corpus):
    data = ready_text_data(str(small_corpus), tokenizer=CharacterTokenizer(), max_length=64, batch_size=4)
    assert isinstance(data.tokens, np.memmap)
    text = "".join("".join(d.chunks()) for d in find_documents(small_corpus))
    assert data.splits["train"].tokens + data.splits["validation"].tokens == len(text) + 4  # one [EOS] per work
    batch = next(iter(data.val_dataloader()))
    assert batch.input_ids.shape == (4, 64)
    eos = batch.input_ids == data.tokenizer.eos_token_id
    assert torch.equal(batch.maskable, ~eos) and bool(batch.attention_mask.all())
    first = data.tokenizer.decode(batch.input_ids[0])
    assert first in text  # a block is a contiguous window of one held-out work
    assert data.tokens_per_unit() == pytest.approx(1.0)


def test_blocks_read_from_the_file_equal_the_memory_map_in_every_worker(small_corpus):
    data = ready_text_data(str(small_corpus), tokenizer=CharacterTokenizer(), max_length=16, batch_size=4)
    split = data.splits["train"]
    count = split.tokens // 16
    expected = torch.from_numpy(data.tokens[split.start : split.start + count * 16].astype(np.int64)).view(-1, 16)
    blocks = data.train_dataloader().dataset.dataset  # the blocks, under the loader's whole-batch view
    assert torch.equal(torch.stack([blocks[i] for i in range(len(blocks))]), expected)
    # The parent's handle is open now; two forked workers reading the same dataset must each open their own,
    # or they would move one shared file offset under each other and return blocks from wrong places.
    loader = torch.utils.data.DataLoader(blocks, batch_size=8, num_workers=2)
    assert torch.equal(torch.cat(list(loader)), expected)


def test_cache_is_reused_and_keyed_by_content_and_tokenizer(small_corpus, tmp_path):
    cache = tmp_path / "cache"
    first = ready_text_data(str(small_corpus), max_length=64, cache_dir=str(cache))
    stamp = (first.cache / "tokens.bin").stat().st_mtime_ns
    again = ready_text_data(str(small_corpus), max_length=64, cache_dir=str(cache))
    assert again.cache == first.cache and (again.cache / "tokens.bin").stat().st_mtime_ns == stamp
    bpe = ready_text_data(str(small_corpus), tokenizer=ByteLevelBPETokenizer(300), max_length=64, cache_dir=str(cache))
    assert bpe.cache != first.cache and bpe.tokens_per_unit() < 0.8
    (small_corpus / "work_0.txt").write_text("Changed text.\n" * 200)
    changed = ready_text_data(str(small_corpus), max_length=64, cache_dir=str(cache))
    assert changed.cache != first.cache


def test_single_file_corpus_splits_its_tail(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("abcdefghij" * 100)
    data = ready_text_data(str(path), max_length=16, val_fraction=0.1)
    assert data.splits["validation"].tokens == 101 and data.splits["train"].end == data.splits["validation"].start


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "corpus not found"),
        (b"", "holds no text"),
        (b"caf\xe9 au lait\n", "not UTF-8 text \\(invalid byte at offset 3\\)"),
        (b"short\n", "shorter than one window"),
    ],
)
def test_bad_corpora_are_named_user_errors(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserInputError, match=message) as error:
        ready_text_data(str(path), max_length=64)
    assert "corpus.txt" in str(error.value)


def test_bad_jsonl_records_name_the_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "ok"}\n{"body": "no text field"}\n')
    with pytest.raises(UserInputError, match="c.jsonl:2: record has no string field 'text'"):
        ready_text_data(str(path), max_length=4)
    path.write_text('{"text": "ok"}\n{broken\n')
    with pytest.raises(UserInputError, match="c.jsonl:2: invalid JSON"):
        ready_text_data(str(path), max_length=4)


def test_train_characters_caps_training_works_and_keeps_the_held_out_ones(tmp_path):
    for i in range(10):
        (tmp_path / f"w{i}.txt").write_text(f"work {i} " * (100 + 10 * i) + "\n")
    documents = find_documents(tmp_path)
    train, held_out = split_documents(documents, 0.1)  # the data module's default val_fraction
    sizes = [len("".join(d.chunks())) for d in train]
    cap = sum(sizes[:3]) + sizes[3] // 2  # three whole works fit, the fourth does not
    whole = ready_text_data(str(tmp_path), tokenizer=CharacterTokenizer(), max_length=16, batch_size=4)
    capped = ready_text_data(
        str(tmp_path), tokenizer=CharacterTokenizer(), max_length=16, batch_size=4, train_characters=cap
    )
    assert capped.splits["train"].characters == sum(sizes[:3]) <= cap < whole.splits["train"].characters
    assert capped.splits["validation"].characters == whole.splits["validation"].characters
    assert capped.splits["validation"].characters == sum(len("".join(d.chunks())) for d in held_out)
    assert capped.cache != whole.cache  # the cap is part of the cache key
    tiny = ready_text_data(
        str(tmp_path), tokenizer=CharacterTokenizer(), max_length=16, batch_size=4, train_characters=1
    )
    assert tiny.splits["train"].characters == sizes[0]  # the first work whatever its size
    with pytest.raises(UserInputError, match="data.train_characters must be positive"):
        ready_text_data(str(tmp_path), train_characters=0)

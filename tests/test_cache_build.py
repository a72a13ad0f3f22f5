"""The token cache: fast encoders equal tokenizers' own encoding, and split statistics are exact."""

import json
import multiprocessing

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from text_data import ready_text_data

from discrete_diff.text.cache_build import BATCH_CHARACTERS
from discrete_diff.text.encoding import CharacterEncoder, PieceCacheEncoder, corpus_encoder
from discrete_diff.text.parallel import encode_batches
from discrete_diff.text.sources import find_documents, split_documents
from discrete_diff.text.tokenizers import ByteLevelBPETokenizer, CharacterTokenizer, TokenizerFile, spread_sample
from discrete_diff.token_cache import FORMAT_VERSION

TRAINING_TEXT = ["It's 12 o'clock.\nThe  cat sat\ton the mat;\n\n  indented line\r\n[MASK] naïve café\u3000x\n"] * 20

# Letters, digits, ASCII and Unicode whitespace of every kind (\x1c-\x1f and \x85 are whitespace to Python's `re`
# but not to every regex engine), contractions, accents, an emoji, and the special tokens' spelling.
TEXT = st.lists(
    st.sampled_from(
        ["a", "b", "Z", "é", "😀", "7", "'s", "'ll", ".", ",", "[MASK]", "[EOS]", " ", "  ", "\t", "\n", "\r",
         "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2028", "\u3000", "\u180e", "\u200b"]
    ),
    max_size=40,
).map("".join)  # fmt: skip


def _backend(choice):
    backend = choice.build(lambda: iter(TRAINING_TEXT)).backend_tokenizer
    backend.encode_special_tokens = True
    return backend


CHARACTER = _backend(CharacterTokenizer())
BYTE_LEVEL = _backend(ByteLevelBPETokenizer(300, min_frequency=1))
ENCODERS = {CHARACTER: corpus_encoder(CHARACTER), BYTE_LEVEL: corpus_encoder(BYTE_LEVEL)}  # caches kept across examples


def test_our_tokenizers_get_the_fast_encoders_and_a_tokenizer_file_the_general_one(tmp_path):
    assert isinstance(corpus_encoder(CHARACTER), CharacterEncoder)
    assert isinstance(corpus_encoder(BYTE_LEVEL), PieceCacheEncoder)
    path = tmp_path / "tokenizer.json"
    path.write_text(BYTE_LEVEL.to_str())
    general = TokenizerFile(str(path)).build(lambda: iter(())).backend_tokenizer
    general.normalizer = None
    general.pre_tokenizer = None  # a plain BPE over whole texts: no shortcut is exact for it
    general.encode_special_tokens = True
    encoder = corpus_encoder(general)
    assert not isinstance(encoder, CharacterEncoder | PieceCacheEncoder)
    assert encoder(["abc abc"])[0].tolist() == general.encode("abc abc", add_special_tokens=False).ids


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(TEXT, max_size=4))
def test_fast_encoders_equal_tokenizers_own_encoding(texts):
    for backend, encoder in ENCODERS.items():
        encoded = encoder(texts)
        assert [ids.tolist() for ids in encoded] == [backend.encode(t, add_special_tokens=False).ids for t in texts]


def test_piece_cache_stays_exact_when_it_is_emptied():
    encoder = PieceCacheEncoder(BYTE_LEVEL, max_pieces=20)
    first, second = (" ".join(f"{letter}{i % 13}" for i in range(100)) for letter in "wv")
    encoded = encoder([first, second, first])
    assert [ids.tolist() for ids in encoded] == [
        BYTE_LEVEL.encode(t, add_special_tokens=False).ids for t in (first, second, first)
    ]
    # Emptied before each text here: only the last text's pieces are left ("w0" at its start, then " w0".." w12").
    assert len(encoder.slot_of) == 14 and not any("v" in piece for piece in encoder.slot_of)


def test_worker_processes_encode_exactly_what_one_process_does():
    batches = [(index, [f"batch {index}: " + "the cat sat " * index, "[MASK] é\n"]) for index in range(9)]
    expected = [[BYTE_LEVEL.encode(text, add_special_tokens=False).ids for text in texts] for _, texts in batches]
    serial = list(encode_batches(batches, BYTE_LEVEL, np.dtype(np.uint16), workers=0, warmup=2))
    stream = encode_batches(batches, BYTE_LEVEL, np.dtype(np.uint16), workers=2, warmup=2)
    parallel = [next(stream) for _ in range(3)]
    assert len(multiprocessing.active_children()) == 2  # after the warm-up batches, two forked workers
    parallel += list(stream)
    assert not multiprocessing.active_children()  # and gone once the stream is done
    assert [key for key, _ in parallel] == list(range(9))  # in input order, whichever worker finished first
    assert all(ids.dtype == np.uint16 for _, arrays in parallel for ids in arrays)
    assert [[ids.tolist() for ids in arrays] for _, arrays in parallel] == expected
    assert [[ids.tolist() for ids in arrays] for _, arrays in serial] == expected


def test_spread_sample_keeps_at_most_the_limit_spread_over_the_whole_corpus():
    chunks = [f"{i:04d}" * 256 for i in range(100)]  # 1 KB each
    sample = spread_sample(iter(chunks), megabytes=10 / 1024)
    assert 5 <= len(sample) <= 10 and sum(map(len, sample)) <= 10 * 1024
    assert sample[0] == chunks[0] and int(sample[-1][:4]) >= 50  # not only the first chunks


def test_cache_tokens_equal_the_tokenizer_per_chunk_across_batches(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    line = "The quick brown fox, it's said, jumps over 13 lazy dogs.\n"
    (corpus / "long.txt").write_text(line * (2 * BATCH_CHARACTERS // len(line) + 7))  # several chunks and batches
    (corpus / "empty.txt").write_text("")
    for index in range(3):
        (corpus / f"short_{index}.txt").write_text(f"short work {index}\n" * 50)
    data = ready_text_data(str(corpus), tokenizer=ByteLevelBPETokenizer(300), max_length=8, val_fraction=0.4)
    backend = data.tokenizer.backend_tokenizer
    backend.encode_special_tokens = True
    train, validation = split_documents(find_documents(corpus), 0.4)
    expected = []
    for document in validation + train:
        for chunk in document.chunks():
            expected.extend(backend.encode(chunk, add_special_tokens=False).ids)
        expected.append(data.tokenizer.eos_token_id)
    assert np.array_equal(np.asarray(data.tokens), expected)


def test_scored_tokens_leave_out_unknown_characters(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for index in range(9):
        (corpus / f"w{index}.txt").write_text("abcabc\n" * 20)
    validation = split_documents(find_documents(corpus), 0.1)[1][0]
    validation.path.write_text("abcxyz\n" * 20)  # x, y, z never occur in training: [UNK] there
    data = ready_text_data(str(corpus), tokenizer=CharacterTokenizer(), max_length=8, val_fraction=0.1)
    split = data.splits["validation"]
    assert split.characters == 140 and split.tokens == 141  # + [EOS]
    tokens = np.asarray(data.tokens[split.start : split.end])
    assert np.count_nonzero(tokens == data.tokenizer.unk_token_id) == 60
    assert split.scored_tokens == 80  # neither the 60 [UNK] nor [EOS]: make_batch never masks them


@pytest.mark.parametrize("choice", [CharacterTokenizer(), ByteLevelBPETokenizer(300)], ids=["char", "bpe"])
def test_single_document_counts_its_validation_characters(tmp_path, choice):
    path = tmp_path / "one.txt"
    text = "".join(f"Line {i}: the cat sat on mat {i * i}.\n" for i in range(400))
    path.write_text(text)
    data = ready_text_data(str(path), tokenizer=choice, max_length=16, val_fraction=0.1)
    train, validation = data.splits["train"], data.splits["validation"]
    assert train.end == validation.start and train.characters + validation.characters == len(text)
    tail = data.tokenizer.backend_tokenizer.decode(
        np.asarray(data.tokens[validation.start : validation.end - 1]).tolist()
    )
    assert tail == text[len(text) - validation.characters :] and len(tail) == validation.characters
    assert validation.scored_tokens == validation.tokens - 1  # all but [EOS]


def test_a_cache_of_an_older_format_is_rebuilt(small_corpus, tmp_path):
    data = ready_text_data(str(small_corpus), max_length=64, cache_dir=str(tmp_path / "cache"))
    meta_path = data.cache / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta["format"] == FORMAT_VERSION
    meta.pop("format")  # as written before the format was versioned
    meta["splits"]["validation"]["scored_tokens"] = 1
    meta_path.write_text(json.dumps(meta))
    again = ready_text_data(str(small_corpus), max_length=64, cache_dir=str(tmp_path / "cache"))
    assert json.loads(meta_path.read_text())["format"] == FORMAT_VERSION
    assert again.splits["validation"].scored_tokens == data.splits["validation"].scored_tokens > 1

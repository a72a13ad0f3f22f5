import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from discrete_diff.errors import UserInputError
from discrete_diff.text.tokenizers import (
    SPECIAL_TOKENS,
    ByteLevelBPETokenizer,
    CharacterTokenizer,
    TokenizerFile,
)
from discrete_diff.tokenizer_io import tokenizer_from_dict, tokenizer_to_dict

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 20


def chunks():
    return iter([TEXT[:500], TEXT[500:]])


@pytest.mark.parametrize("choice", [CharacterTokenizer(), ByteLevelBPETokenizer(vocab_size=300)], ids=repr)
def test_round_trip_and_distinct_special_ids(choice):
    tokenizer = choice.build(chunks)
    ids = tokenizer(TEXT, add_special_tokens=False).input_ids
    assert tokenizer.decode(ids) == TEXT
    special = [tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS.values()]
    assert len(set(special)) == len(special)
    assert tokenizer.mask_token_id == tokenizer.convert_tokens_to_ids("[MASK]")
    assert None not in (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id)


def test_character_tokenizer_is_one_token_per_character_with_unknowns():
    tokenizer = CharacterTokenizer().build(chunks)
    assert len(tokenizer) == len(set(TEXT)) + len(SPECIAL_TOKENS)
    ids = tokenizer("To€", add_special_tokens=False).input_ids
    assert len(ids) == 3 and ids[2] == tokenizer.unk_token_id


def test_bpe_trained_twice_is_identical_and_compresses():
    first = ByteLevelBPETokenizer(vocab_size=300).build(chunks)
    second = ByteLevelBPETokenizer(vocab_size=300).build(chunks)
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()
    assert len(first(TEXT).input_ids) < len(TEXT) / 2
    assert first.decode(first("naïve café", add_special_tokens=False).input_ids) == "naïve café"


def test_tokenizer_survives_plain_data_round_trip():
    tokenizer = ByteLevelBPETokenizer(vocab_size=300).build(chunks)
    again = tokenizer_from_dict(tokenizer_to_dict(tokenizer))
    assert again(TEXT).input_ids == tokenizer(TEXT).input_ids
    assert again.mask_token_id == tokenizer.mask_token_id


def test_user_tokenizer_file_gets_missing_specials(tmp_path):
    backend = Tokenizer(models.WordLevel({"to": 0, "be": 1, "[UNK]": 2}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    path = tmp_path / "tokenizer.json"
    backend.save(str(path))
    tokenizer = TokenizerFile(str(path)).build(chunks)
    assert tokenizer("to be").input_ids == [0, 1]
    assert {tokenizer.mask_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id} >= {3, 4}


def test_bad_tokenizer_files_are_user_errors(tmp_path):
    with pytest.raises(UserInputError, match="not found"):
        TokenizerFile(str(tmp_path / "missing.json")).build(chunks)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserInputError, match="not a tokenizers JSON file"):
        TokenizerFile(str(bad)).build(chunks)

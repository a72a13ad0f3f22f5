"""The amino-acid tokenizer keeps ESM-2's ids and survives the checkpoint round trip."""

from discrete_diff.protein.tokenizer import AMBIGUOUS, CANONICAL_AMINO_ACIDS, build_protein_tokenizer
from discrete_diff.tokenizer_io import tokenizer_from_dict, tokenizer_to_dict

# Written out independently of the module: ESM-2's Alphabet("ESM-1b") token order.
ESM2_ORDER = "<cls> <pad> <eos> <unk> L A G V S E R T I D P K Q N F Y M H W C X B U Z O . - <null_1> <mask>".split()


def test_ids_follow_esm2_order():
    tokenizer = build_protein_tokenizer()
    assert len(tokenizer) == 33
    assert [tokenizer.convert_tokens_to_ids(t) for t in ESM2_ORDER] == list(range(33))
    assert (tokenizer.cls_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert (tokenizer.unk_token_id, tokenizer.mask_token_id, tokenizer.bos_token_id) == (3, 32, 0)


def test_encode_adds_cls_eos_and_decode_round_trips():
    tokenizer = build_protein_tokenizer()
    sequence = CANONICAL_AMINO_ACIDS + AMBIGUOUS + "MKV"
    ids = tokenizer(sequence)["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and len(ids) == len(sequence) + 2
    assert ids[1:4] == [ESM2_ORDER.index(c) for c in sequence[:3]]
    assert tokenizer.decode(ids, skip_special_tokens=True) == sequence


def test_unknown_characters_map_to_unk_and_special_strings_stay_special():
    tokenizer = build_protein_tokenizer()
    ids = tokenizer("MJ*<mask>K", add_special_tokens=False)["input_ids"]
    assert ids == [20, 3, 3, 32, 15]


def test_checkpoint_round_trip_keeps_everything():
    tokenizer = build_protein_tokenizer()
    again = tokenizer_from_dict(tokenizer_to_dict(tokenizer))
    assert again.get_vocab() == tokenizer.get_vocab()
    assert again.all_special_ids == tokenizer.all_special_ids
    assert again("MKLV")["input_ids"] == tokenizer("MKLV")["input_ids"]

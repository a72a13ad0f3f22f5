"""The amino-acid tokenizer: one token per residue, in ESM-2's vocabulary order.

Keeping ESM-2's exact ids (0..32) means an ESM-2 checkpoint can later serve as the denoiser without remapping.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, processors
from transformers import PreTrainedTokenizerFast

ESM2_VOCABULARY = (
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F", "Y", "M", "H", "W", "C",
    "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>",
)  # fmt: skip
"""Token strings in id order (ESM-2's `Alphabet`)."""

CANONICAL_AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
"""The 20 standard residues, alphabetical."""

AMBIGUOUS = "XBZUO"
"""Unknown (X), ambiguous (B = D/N, Z = E/Q) and the rare selenocysteine (U) and pyrrolysine (O)."""

SPECIAL_TOKENS = {
    "bos_token": "<cls>",
    "cls_token": "<cls>",
    "pad_token": "<pad>",
    "eos_token": "<eos>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}
"""<null_1> is special to the backend (never produced from text) but not named here: checkpoints store only
the named special tokens, so naming it would make a reloaded tokenizer differ from the original."""


def build_protein_tokenizer() -> PreTrainedTokenizerFast:
    """A fast tokenizer with ESM-2's 33 ids; `tokenizer(seq)` adds <cls> ... <eos> as ESM-2 does.

    Residues must already be upper-case (the FASTA reader normalises them); anything else maps to <unk>.
    """
    vocab = {token: i for i, token in enumerate(ESM2_VOCABULARY)}
    # BPE with no merges and no pre-tokenizer splits a sequence into single characters.
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    specials = [t for t in ESM2_VOCABULARY if t.startswith("<")]
    backend.add_special_tokens(specials)  # already in the vocabulary, so their ids stay as above
    backend.post_processor = processors.TemplateProcessing(
        single="<cls> $A <eos>",
        pair="<cls> $A <eos> $B <eos>",
        special_tokens=[("<cls>", vocab["<cls>"]), ("<eos>", vocab["<eos>"])],
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, **SPECIAL_TOKENS)

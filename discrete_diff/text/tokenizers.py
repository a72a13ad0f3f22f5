"""Text tokenizers, all `transformers` fast tokenizers backed by HF `tokenizers`.

Three ways to get one: a character vocabulary built from the corpus, a byte-level BPE trained on the
corpus, or a `tokenizer.json` the user gives. [PAD], [MASK], [BOS], [EOS] (and [UNK]) are always there.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from ..errors import UserInputError
from .pretrained import text_tokenizer
from .vocabulary import SPECIAL_TOKENS, wrap_tokenizer

TextChunks = Callable[[], Iterable[str]]
"""A callable returning a fresh iterator over the corpus text (tokenizer training may read it twice)."""


class TextTokenizer(ABC):
    """How a text tokenizer is obtained for a corpus."""

    @abstractmethod
    def build(self, corpus: TextChunks) -> PreTrainedTokenizerFast:
        """Build (or load) the tokenizer, reading the corpus if it needs to."""

    @abstractmethod
    def describe(self) -> str:
        """A stable description of this choice, part of the cache key."""


class CharacterTokenizer(TextTokenizer):
    """One token per character seen in the corpus; characters never seen map to [UNK]."""

    def build(self, corpus: TextChunks) -> PreTrainedTokenizerFast:
        alphabet: set[str] = set()
        for chunk in corpus():
            alphabet.update(chunk)
        specials = list(SPECIAL_TOKENS.values())
        vocab = {token: i for i, token in enumerate(specials + sorted(alphabet - set(specials)))}
        # BPE with no merges and no pre-tokenizer splits text into single characters, spaces included.
        tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=SPECIAL_TOKENS["unk_token"]))
        tokenizer.decoder = decoders.Fuse()
        return wrap_tokenizer(tokenizer)

    def describe(self) -> str:
        return "char"


class ByteLevelBPETokenizer(TextTokenizer):
    """A byte-level BPE trained on the corpus: no [UNK] ever needed, vocabulary size chosen by the user.

    It is trained on at most `training_megabytes` of the training text, chunks taken evenly across the whole of it
    (None: all of it): training reads about 9 MB/s on 2 cores, so a 10 GB corpus would otherwise spend 20 minutes
    here, and a few thousand merges are settled long before that.
    """

    def __init__(self, vocab_size: int = 4096, min_frequency: int = 2, training_megabytes: float | None = 16.0) -> None:
        if vocab_size < 256 + len(SPECIAL_TOKENS):
            raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)} (bytes + specials)")
        if training_megabytes is not None and not training_megabytes > 0:
            raise ValueError(f"training_megabytes must be positive or None, got {training_megabytes}")
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.training_megabytes = training_megabytes

    def build(self, corpus: TextChunks) -> PreTrainedTokenizerFast:
        tokenizer = Tokenizer(models.BPE(unk_token=None))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=self.vocab_size,
            min_frequency=self.min_frequency,
            special_tokens=list(SPECIAL_TOKENS.values()),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        text = corpus() if self.training_megabytes is None else spread_sample(corpus(), self.training_megabytes)
        tokenizer.train_from_iterator(text, trainer=trainer)
        return wrap_tokenizer(tokenizer)

    def describe(self) -> str:
        sample = "" if self.training_megabytes is None else f"-sample{self.training_megabytes:g}MB"
        return f"bpe-{self.vocab_size}-{self.min_frequency}{sample}"


def spread_sample(chunks: Iterable[str], megabytes: float) -> list[str]:
    """Every k-th chunk, k the smallest power of two that keeps at most `megabytes` of text (in characters).

    One pass, memory bounded by the sample: k doubles, dropping every other kept chunk, whenever the sample grows
    too large, so the chunks kept are spread evenly over the whole corpus, not only its first files.
    """
    limit = megabytes * (1 << 20)
    kept: list[tuple[int, str]] = []
    size, stride = 0, 1
    for index, chunk in enumerate(chunks):
        if index % stride:
            continue
        kept.append((index, chunk))
        size += len(chunk)
        while size > limit and len(kept) > 1:
            stride *= 2
            kept = [(i, c) for i, c in kept if i % stride == 0]
            size = sum(len(c) for _, c in kept)
    return [chunk for _, chunk in kept]


class TokenizerFile(TextTokenizer):
    """A `tokenizer.json` (HF tokenizers format) the user provides."""

    def __init__(self, path: str) -> None:
        self.path = str(path)

    def build(self, corpus: TextChunks) -> PreTrainedTokenizerFast:
        path = Path(self.path).expanduser()
        if not path.is_file():
            raise UserInputError(f"{path}: tokenizer file not found")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as error:  # tokenizers raises plain Exception subclasses for bad JSON
            raise UserInputError(f"{path}: not a tokenizers JSON file ({error})") from None
        return wrap_tokenizer(tokenizer)

    def describe(self) -> str:
        path = Path(self.path).expanduser()
        if not path.is_file():
            raise UserInputError(f"{path}: tokenizer file not found")
        return "file-" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class PretrainedTokenizer(TextTokenizer):
    """The tokenizer of a local transformers model directory, to fine-tune that model as the denoiser.

    Its special tokens are renamed to the roles above (ids unchanged); a missing mask token is added, or refused.
    """

    def __init__(self, path: str, add_mask_token: bool = True) -> None:
        self.path = str(path)
        self.add_mask_token = add_mask_token

    def build(self, corpus: TextChunks) -> PreTrainedTokenizerFast:
        return text_tokenizer(self.path, self.add_mask_token)

    def describe(self) -> str:
        directory = Path(self.path).expanduser()
        if not directory.is_dir():
            raise UserInputError(f"{directory}: model directory not found")
        digest = hashlib.sha256(str(self.add_mask_token).encode())
        for path in sorted(directory.iterdir()):
            if path.is_file() and path.suffix in (".json", ".txt", ".model"):  # tokenizer files, not weights
                digest.update(path.name.encode() + path.read_bytes())
        return "pretrained-" + digest.hexdigest()[:16]

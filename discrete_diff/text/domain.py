"""Text as a domain: the model's own tokenizer, no framing, characters as the unit, plain-text outputs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch

from ..batch import make_batch
from ..domain import Domain, EvaluationData, Record
from ..templates import TokenTemplate, parse_text_template, tokenize_text_template
from .sources import find_documents


class TextDomain(Domain):
    name = "text"
    unit = "character"
    recommended_guidance_scale = 8.0  # genre accuracy rose to w = 8-16 at an unchanged entropy; w = 32 garbles

    def framing(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return (), ()  # training blocks are cut from documents joined by [EOS]: no token frames a block

    def banned_ids(self, *, allow_noncanonical: bool = False, document_breaks: bool = False) -> list[int]:
        tokenizer = self.tokenizer
        banned = {tokenizer.mask_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id}
        if not document_breaks:
            banned |= set(tokenizer.all_special_ids)
        return sorted(i for i in banned if i is not None)

    def parse_template(self, text: str, where: str, *, allow_noncanonical: bool = False) -> TokenTemplate:
        tokenizer = self.tokenizer
        forbidden = {tokenizer.unk_token_id, tokenizer.mask_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id}
        return tokenize_text_template(parse_text_template(text, where), tokenizer, forbidden, where)

    def decode(self, ids: Sequence[int], *, at_eos: str = "break") -> str:
        """[EOS] joins documents in training: here it ends the text (`stop`) or shows as a line `[EOS]` (else)."""
        ids, eos = list(ids), self.tokenizer.eos_token_id
        ends = [i for i, token in enumerate(ids) if token == eos] + [len(ids)]
        documents = [ids[start + 1 : end] for start, end in zip([-1, *ends[:-1]], ends, strict=True)]
        if at_eos == "stop":
            documents = documents[:1]
        texts = [self.tokenizer.decode(document, skip_special_tokens=True) for document in documents]
        return f"\n{self.tokenizer.eos_token}\n".join(texts)

    def format_records(self, records: Sequence[Record]) -> str:
        return "".join(f"=== {record.description} ===\n{record.text}\n" for record in records)

    def evaluation_data(self, path: str, *, length: int, batch_size: int) -> EvaluationData:
        """Documents joined by [EOS] as in training, cut into blocks of `length` (the last one padded).

        Characters are counted exactly where they are scored: each token is credited with the characters from the
        end of the previous token to its own end (a chunk's last token also with any it leaves at the end), so
        text a tokenizer drops (spaces) is counted and [UNK] tokens, not scored, are credited with nothing.
        """
        tokenizer = self.tokenizer
        backend = tokenizer.backend_tokenizer
        ids: list[int] = []
        credited: list[int] = []  # characters each token stands for
        unknown = Counter()
        previous = backend.encode_special_tokens
        backend.encode_special_tokens = True  # a literal "[MASK]" in the file is text, as in training
        try:
            for document in find_documents(path):
                for chunk in document.chunks():
                    encoding = backend.encode(chunk, add_special_tokens=False)
                    ids += encoding.ids
                    credited += _characters_per_token(
                        encoding.ids, encoding.offsets, len(chunk), tokenizer.unk_token_id
                    )
                    unknown.update(
                        chunk[begin:end]
                        for token, (begin, end) in zip(encoding.ids, encoding.offsets, strict=True)
                        if token == tokenizer.unk_token_id
                    )
                ids.append(tokenizer.eos_token_id)
                credited.append(0)
        finally:
            backend.encode_special_tokens = previous
        rows = torch.tensor(ids, dtype=torch.long)
        pad = (-len(rows)) % length
        rows = torch.cat((rows, torch.full((pad,), tokenizer.pad_token_id))).reshape(-1, length)  # (N, length)
        characters = torch.tensor(credited + [0] * pad, dtype=torch.float64).reshape(-1, length).sum(-1)  # (N,)
        starts = range(0, len(rows), batch_size)
        batches = [make_batch(rows[start : start + batch_size], tokenizer) for start in starts]
        units = [float(characters[start : start + batch_size].sum()) for start in starts]
        scored = sum(int(batch.maskable.sum()) for batch in batches)
        notes = []
        if unknown:
            common = ", ".join(f"{text!r} x{count}" for text, count in unknown.most_common(5))
            count = sum(unknown.values())
            notes.append(f"{count} characters outside the model's vocabulary (read as [UNK], not scored): {common}")
        return EvaluationData(batches, scored / max(sum(units), 1.0), notes, units)


def _characters_per_token(ids: list[int], offsets: list[tuple[int, int]], length: int, unk_id: int | None) -> list[int]:
    """Characters each token of a chunk of `length` characters stands for; [UNK] stands for none."""
    credited, covered = [], 0
    for token, (_, end) in zip(ids, offsets, strict=True):
        end = max(end, covered)
        credited.append(0 if token == unk_id else end - covered)
        covered = end
    if credited:
        credited[-1] += length - covered  # trailing text the tokenizer dropped (whitespace)
    return credited

"""Proteins as a domain: ESM-2 vocabulary, <cls> ... <eos> framing, residues as the unit, FASTA in and out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..domain import Domain, EvaluationData, Record
from ..templates import TokenTemplate, parse_protein_template, tokenize_protein_template
from .batching import encode_proteins, protein_loader
from .fasta import FastaPolicy, ProteinRecord, format_fasta, read_fasta, write_fasta
from .tokenizer import AMBIGUOUS, CANONICAL_AMINO_ACIDS


def alphabet(allow_noncanonical: bool) -> str:
    """The residues generation may emit: the 20 canonical ones, plus X, B, Z, U, O when allowed."""
    return CANONICAL_AMINO_ACIDS + (AMBIGUOUS if allow_noncanonical else "")


class ProteinDomain(Domain):
    name = "protein"
    unit = "residue"
    recommended_guidance_scale = 1.0  # raised every family's HMM hit rate; w = 4 lowered them all

    def framing(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return (self.tokenizer.bos_token_id,), (self.tokenizer.eos_token_id,)

    def banned_ids(self, *, allow_noncanonical: bool = False, document_breaks: bool = False) -> list[int]:
        vocab = self.tokenizer.get_vocab()
        allowed = {vocab[residue] for residue in alphabet(allow_noncanonical)}
        return sorted(set(vocab.values()) - allowed)

    def parse_template(self, text: str, where: str, *, allow_noncanonical: bool = False) -> TokenTemplate:
        parsed = parse_protein_template(text, where)
        head, tail = self.framing()
        return replace(
            tokenize_protein_template(parsed, self.tokenizer, alphabet(allow_noncanonical), where), head=head, tail=tail
        )

    def decode(self, ids: Sequence[int], *, at_eos: str = "break") -> str:
        """Residues only: <eos> is framing, never drawn inside a protein, so `at_eos` has nothing to act on."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True).replace(" ", "")

    def format_records(self, records: Sequence[Record]) -> str:
        return format_fasta(self._fasta(records))

    def write_records(self, path: str | Path, records: Sequence[Record]) -> Path:
        return write_fasta(path, self._fasta(records))

    @staticmethod
    def _fasta(records: Sequence[Record]) -> list[ProteinRecord]:
        return [ProteinRecord(r.id, r.description, r.text) for r in records]

    def evaluation_data(self, path: str, *, length: int, batch_size: int) -> EvaluationData:
        records, report = read_fasta(path, FastaPolicy(duplicates="keep"))
        proteins = encode_proteins(self.tokenizer, [r.sequence for r in records])
        longest = max(len(p) for p in proteins) + 2
        notes = [report.summary()] if report.dropped else []
        if longest > length:
            notes.append(f"proteins longer than the model's window of {length} tokens are scored on their first window")
        return EvaluationData(protein_loader(proteins, self.tokenizer, length, batch_size), 1.0, notes)

"""The family label as a prefix token instead of an added embedding: does conditional generation (w = 0) improve?

The `families` model adds a learned label embedding to every position. A prefix token is the other way the field
conditions a sequence model (ProGen's and CTRL's control tags): the label is a token the network attends to. This
measures that lever with the engine as it is: each record of the labelled built-in `families` set gets a marker
residue of its own label in front (B, Z, U, O: letters absent from the set), the same `families` config trains on it
for the same budget with `model.label_dropout` 0.999 (the labels still balance the draws, as `label_balance: 1`
does, but the network almost never sees one: the family reaches it only as the first token), and each family is
sampled through the infilling API with its marker given and the residues after it generated, at the lengths of its
training sequences. The marker is cut off and the rest scored as benchmarks/guidance.py scores its w = 0 samples
(HMM hit rate, novelty, diversity, composition, degeneration). Compare with guidance.py's w = 0 rows for the added
embedding (the default families model, same budget).
Command: `python benchmarks/label_prefix.py [--quick | --smoke] [--budget S] [--data-dir DIR] [--out DIR]`
(full: 15 min of training, ~8 min of samples).
"""

from __future__ import annotations

import sys
from pathlib import Path

import common
import guidance
import torch
from guidance import Family, diversity_ratio, family_alignment

from discrete_diff.atomic_files import atomic_write_text
from discrete_diff.inference import TrainedModel, load_model
from discrete_diff.infill.api import infill_templates
from discrete_diff.protein.builtin_sets import sequences_path
from discrete_diff.protein.families import LABEL_FIELD
from discrete_diff.protein.fasta import FastaPolicy, header_value, read_fasta
from discrete_diff.protein_report import evaluate_proteins
from discrete_diff.sampling import SamplingSettings

NAME = "label_prefix"
MARKERS = "BZUO"
"""Marker residues, one per label in sorted order: ambiguous or rare letters the built-in set never holds."""
DROPOUT = 0.999
"""The share of training examples whose label embedding is the null one: the embedding is (nearly) never read."""


def prefixed_fasta(data_dir: str, out: Path) -> tuple[Path, dict[str, str]]:
    """OUT/data/families_prefixed.faa: every record of the built-in set with its label's marker in front; and
    label -> marker."""
    source = sequences_path("families", data_dir)
    records, _ = read_fasta(source, FastaPolicy())
    labels = sorted({header_value(r, LABEL_FIELD, source) for r in records})
    if len(labels) > len(MARKERS):
        raise common.UserInputError(f"{source}: {len(labels)} labels, more than the {len(MARKERS)} marker letters")
    markers = dict(zip(labels, MARKERS, strict=False))
    taken = sorted({letter for r in records for letter in r.sequence} & set(MARKERS))
    if taken:
        raise common.UserInputError(f"{source}: the marker letters {', '.join(taken)} occur in its sequences")
    text = "".join(
        f">{r.id} {LABEL_FIELD}={label}\n{markers[label]}{r.sequence}\n"
        for r, label in ((r, header_value(r, LABEL_FIELD, source)) for r in records)
    )
    return atomic_write_text(out / "data" / "families_prefixed.faa", text), markers


def scored_families(model: TrainedModel, data, data_dir: str, count: int) -> dict[str, Family]:
    """label -> Family, as guidance.scored_families, with the marker cut off every training and held-out sequence
    (the shipped alignment is read by record id, which the prefixed file keeps)."""
    families = {}
    for label in model.labels.names:
        train = [r for r in data.train_records if r.label == label]
        held_out = [r.sequence[1:] for r in data.validation_records if r.label == label]
        alignment = family_alignment("families", label, train, data_dir) if held_out else None
        if alignment is None:
            continue
        fits = [len(r.sequence) - 1 for r in train if len(r.sequence) <= model.length_limit]
        picks = torch.randint(len(fits), (count,), generator=torch.Generator().manual_seed(0)).tolist()
        families[label] = Family(train=[r.sequence[1:] for r in train], held_out=held_out, alignment=alignment,
                                 lengths=[fits[i] for i in picks])  # fmt: skip
    return families


def prefixed_samples(model: TrainedModel, family: Family, marker: str, steps: int) -> list[str]:
    """One sample per length of `family`: its marker given, the residues after it generated (no label), cut off."""
    domain = model.domain
    templates = [domain.parse_template(f"{marker}[{n}]", "prefix", allow_noncanonical=True) for n in family.lengths]
    banned = domain.banned_ids(allow_noncanonical=False, document_breaks=False)
    run = infill_templates(model, templates, [f"{marker}[{n}]" for n in family.lengths],
                           settings=SamplingSettings(steps=steps), banned=banned, batch_size=64)  # fmt: skip
    return [fill.text[1:] for fill in run.infills]


def row(label: str, marker: str, result: dict) -> dict:
    hmm = result.get("family_hmm", {})
    return {"label": label, "marker": marker, "HMM hit": hmm.get("generated"), "held-out HMM hit": hmm.get("held_out"),
            "median novelty": result["novelty"]["median"], "diversity ratio": diversity_ratio(result),
            "composition JS bits": result["composition"]["js_bits"], **common.protein_degeneration(result)}  # fmt: skip


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument("--budget", type=float, default=None, help="training seconds (default: guidance.py's)")
    options.add_argument("--data-dir", default=str(common.REPO / "data"), help="where built-in sets are kept")
    args = options.parse_args(argv)
    size = guidance.SIZES[common.mode(args)]
    budget = common.positive(size["budget"] if args.budget is None else args.budget, "--budget")
    out = Path(args.out)
    corpus, markers = prefixed_fasta(args.data_dir, out)
    overrides = ["--data.init_args.corpus", str(corpus), "--data.init_args.data_dir", args.data_dir]
    overrides += ["--model.label_dropout", str(DROPOUT)]
    cli, checkpoint, seconds = guidance.train("families", overrides, size, budget, out)
    model = load_model(checkpoint)
    rows = []
    for label, family in scored_families(model, cli.datamodule, args.data_dir, size["proteins"]).items():
        generated = prefixed_samples(model, family, markers[label], size["protein_steps"])
        result = evaluate_proteins(generated, family.train, family.held_out, alignment_rows=family.alignment)
        rows.append(row(label, markers[label], result))
    payload = {"benchmark": NAME, "mode": common.mode(args), "machine": common.machine(), "size": size,
               "train_seconds": seconds, "steps": cli.trainer.global_step, "checkpoint": checkpoint,
               "label_dropout": DROPOUT, "markers": markers, "rows": rows}  # fmt: skip
    columns = ["label", "marker", "HMM hit", "held-out HMM hit", "median novelty", "diversity ratio"]
    columns += ["composition JS bits", "low-complexity gen", "low-complexity held-out", "homopolymer gen"]
    columns += ["homopolymer held-out"]
    tables = {
        f"The label as a prefix token: samples per family at w = 0 ({cli.trainer.global_step} steps, "
        f"{seconds / 60:.1f} min)": common.markdown_table(rows, columns),
    }
    print(common.write_report(out, NAME, payload, tables).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))

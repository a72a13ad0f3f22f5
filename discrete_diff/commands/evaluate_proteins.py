"""`discrete-diff evaluate-proteins --generated x.fasta --checkpoint C`: do generated proteins look natural?"""

from __future__ import annotations

import argparse
import json

from ..atomic_files import atomic_write_text
from ..errors import UserInputError
from ..inference import TrainedModel, load_model
from ..protein.alignment import align_sequences, read_alignment
from ..protein.builtin_sets import DATASETS, alignment_paths
from ..protein.fasta import FastaPolicy, read_fasta
from ..protein_report import evaluate_proteins, format_table, plot_comparison
from ..specs import build
from ..training.protein_data import ProteinDataModule, resolve_fasta
from .checkpoint_argument import add_checkpoint_argument

NAME = "evaluate-proteins"
HELP = "protein metrics of generated sequences against training and held-out naturals (table, JSON, PNG)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--generated", required=True, help="FASTA of generated sequences")
    add_checkpoint_argument(
        parser,
        required=False,
        help="the protein model (a .ckpt, exported directory or run's log folder): gives the likelihood bound, and "
        "its training/held-out split unless --train/--held-out",
    )
    parser.add_argument("--train", default=None, help="FASTA (or built-in set name) of the training sequences")
    parser.add_argument("--held-out", default=None, help="FASTA of held-out natural sequences")
    parser.add_argument(
        "--alignment",
        default=None,
        help="aligned FASTA of the family for the HMM (default: the built-in set's, else the training sequences "
        "aligned with FAMSA)",
    )
    parser.add_argument(
        "--use-recorded-data",
        action="store_true",
        help="with --checkpoint: use the split of the FASTA path it recorded (a built-in set is used without this)",
    )
    parser.add_argument(
        "--label",
        default=None,
        help="with --checkpoint of a labelled model: judge against this label's training and held-out sequences "
        "(and its family's alignment in a built-in set)",
    )
    parser.add_argument("--data-dir", default="data", help="where built-in sets are kept (default: data)")
    parser.add_argument("--time-draws", type=int, default=4, help="time draws per sequence for the NELBO")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--json", default=None, help="write all numbers here (atomically)")
    parser.add_argument("--plot", default=None, help="write the length / composition plot here (PNG)")


def run(args: argparse.Namespace) -> int:
    lenient = FastaPolicy(duplicates="keep")
    generated = [r.sequence for r in read_fasta(args.generated, lenient)[0]]
    if len(generated) < 2:
        raise UserInputError(f"{args.generated}: need at least two generated sequences")
    model = load_model(args.checkpoint) if args.checkpoint else None
    train_ids, train, held_out, corpus = _reference_sets(args, model, lenient)
    alignment = args.alignment or _builtin_alignment(corpus, args.data_dir, args.label)
    if alignment:
        # Only training rows: the HMM must not have seen the held-out naturals it is compared with.
        alignment_rows, source = read_alignment(alignment, keep=train_ids), str(alignment)
    else:
        alignment_rows, source = align_sequences(train), f"FAMSA alignment of the {len(train)} training sequences"
    result = evaluate_proteins(
        generated,
        train,
        held_out,
        alignment_rows=alignment_rows,
        alignment_source=source,
        model=model,
        time_draws=args.time_draws,
        seed=args.seed,
    )
    print(format_table(result))
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    if args.plot:
        plot_comparison(args.plot, generated, held_out)
    return 0


def _reference_sets(
    args: argparse.Namespace, model: TrainedModel | None, policy: FastaPolicy
) -> tuple[set[str] | None, list[str], list[str], str | None]:
    """(training ids, training sequences, held-out sequences, built-in corpus name or None)."""
    if args.label is not None and (args.train or model is None):
        raise UserInputError("--label picks a labelled model's own split: give --checkpoint, not --train/--held-out")
    if args.train and args.held_out:
        train = read_fasta(resolve_fasta(args.train, args.data_dir), policy)[0]
        held_out = read_fasta(resolve_fasta(args.held_out, args.data_dir), policy)[0]
        corpus = args.train if args.train in DATASETS else None
        return {r.id for r in train}, [r.sequence for r in train], [r.sequence for r in held_out], corpus
    spec = (model.data if model else {}).get("datamodule")
    if not spec or not spec.get("class_path", "").endswith("ProteinDataModule"):
        raise UserInputError("give --train and --held-out FASTA files, or a --checkpoint of a protein model")
    corpus = spec["init_args"].get("corpus")
    if corpus not in DATASETS and not args.use_recorded_data:
        recorded = corpus or spec["init_args"].get("labels")
        raise UserInputError(
            f"the checkpoint was trained on {recorded!r}, not a built-in set: give --train and --held-out, or "
            "--use-recorded-data to read the recorded path"
        )
    data = build({**spec, "init_args": {**spec["init_args"], "data_dir": args.data_dir}}, ProteinDataModule)
    data.prepare_data()
    data.setup("validate")
    train, held_out = data.train_records, data.validation_records
    if model.labels is not None:
        if args.label is None:
            names = ", ".join(model.labels.names)
            raise UserInputError(f"the checkpoint's model is labelled: give --label, one of {names}")
        model.labels.id_of(args.label)  # an unknown label names the known ones
        train = [r for r in train if r.label == args.label]
        held_out = [r for r in held_out if r.label == args.label]
    elif args.label is not None:
        raise UserInputError(f"--label {args.label!r}: the checkpoint's model was trained without labels")
    return (
        {r.id for r in train},
        [r.sequence for r in train],
        [r.sequence for r in held_out],
        corpus if corpus in DATASETS else None,
    )


def _builtin_alignment(corpus: str | None, data_dir: str, label: str | None) -> str | None:
    """A built-in set's alignment: the labelled set's one of the label's family (none for a label without)."""
    paths = alignment_paths(corpus, data_dir) if corpus else []
    if label is not None:
        paths = [p for p in paths if p.stem == label]
    return str(paths[0]) if paths else None

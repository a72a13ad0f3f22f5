"""`discrete-diff infill`: fill the blanks of prompts with a trained model, in the model's domain.

Text:     discrete-diff infill --checkpoint C --prompt "To be, or [MASK:12] the question"
Proteins: discrete-diff infill --checkpoint C --prompt "[5-15]MOTIFONE[10-30]MOTIFTWO[5-15]" --num 8 --out s.fasta
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..domain import Record
from ..errors import UserInputError
from ..inference import load_model
from ..infill import Infill, InfillRun, LikelihoodLength, UniformLength, infill
from ..sampling import SamplingSettings
from ..sampling.render import render_terminal, save_trajectory_png
from .checkpoint_argument import add_checkpoint_argument
from .sampling_options import add_label_argument, add_sampling_arguments, settings_from_args

NAME = "infill"
HELP = "fill blanks in text prompts ([MASK:N], [MASK:MIN-MAX]) or scaffold protein motifs ([5-15]MOTIF[10-30])"


def configure(parser: argparse.ArgumentParser) -> None:
    add_checkpoint_argument(parser)
    parser.add_argument(
        "--prompt", "--template", dest="prompt", action="append", default=[],
        help="a prompt with blanks: text with [MASK:N], or a protein template [5-15]MOTIF[10-30] (repeatable)",
    )  # fmt: skip
    parser.add_argument("--prompt-file", default=None, help="prompts, one per line (empty lines skipped)")
    parser.add_argument("--num", type=int, default=1, help="fills per prompt (default: 1)")
    add_label_argument(parser)
    parser.add_argument("--out", default=None, help="write here atomically (proteins: FASTA) instead of stdout")
    parser.add_argument(
        "--free-motif-position",
        action="store_true",
        help="draw each range blank's length per fill instead of choosing one",
    )
    parser.add_argument("--allow-noncanonical", action="store_true", help="proteins: allow X, B, Z, U, O")
    parser.add_argument(
        "--length-draws", type=int, default=16, help="time draws per candidate length's NELBO (default: 16)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="fills drawn together (default: 32)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--watch", action="store_true", help="redraw the first fill step by step on the terminal")
    parser.add_argument("--trajectory-png", default=None, help="save the first fill's trajectory as a PNG")
    add_sampling_arguments(parser)


def read_prompts(args: argparse.Namespace) -> list[str]:
    prompts = list(args.prompt)
    if args.prompt_file:
        path = Path(args.prompt_file).expanduser()
        if not path.is_file():
            raise UserInputError(f"--prompt-file {path}: file not found")
        prompts += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return prompts


def infill_options(args: argparse.Namespace, defaults: SamplingSettings | None = None) -> dict[str, Any]:
    """The keyword arguments of `infill` that the options set (prompts and recording aside), over the model's
    sampling `defaults` (`TrainedModel.default_settings`); bad options fail here, before a model is loaded."""
    if args.length_draws < 1:
        raise UserInputError(f"--length-draws must be at least 1, got {args.length_draws}")
    return dict(
        allow_noncanonical=args.allow_noncanonical,
        num=args.num,
        settings=settings_from_args(args, defaults),
        label=args.label,
        seed=args.seed,
        batch_size=args.batch_size,
        length_rule=UniformLength() if args.free_motif_position else LikelihoodLength(args.length_draws),
    )


def run(args: argparse.Namespace) -> int:
    prompts = read_prompts(args)
    if not prompts:
        raise UserInputError("give at least one prompt (--prompt, --template or --prompt-file)")
    infill_options(args)  # bad options fail before a model is loaded
    model = load_model(args.checkpoint)
    options = infill_options(args, model.default_settings())  # a distilled model's step count by default
    result = infill(model, prompts, record=args.watch or bool(args.trajectory_png), **options)
    records = [fill_record(n, fill) for n, fill in enumerate(result.infills)]
    if args.out:
        model.domain.write_records(args.out, records)
    else:
        print(model.domain.format_records(records), end="")
    report_lengths(result)
    show_trajectory(result.infills[0], model, args)
    print(f"{len(result.infills)} fills, {result.network_calls} network calls", file=sys.stderr)
    return 0


def fill_record(number: int, fill: Infill) -> Record:
    blanks = ",".join(map(str, fill.choice.lengths))
    return Record(f"fill_{number}", f"fill_{number} prompt={fill.source} blanks={blanks}", fill.text)


def report_lengths(result: InfillRun) -> None:
    """Say which length the likelihood rule chose for each template with a range blank."""
    seen = set()
    for fill in result.infills:
        if fill.choice.scores is None or fill.source in seen:
            continue
        seen.add(fill.source)
        ranked = sorted(fill.choice.scores.items(), key=lambda item: item[1])
        runner_up = f"; next {ranked[1][0]} at {ranked[1][1]:.2f}" if len(ranked) > 1 else ""
        rule = "the NELBO of the given tokens" + (" less log p(length)" if fill.choice.length_prior else "")
        print(
            f"{fill.source!r}: blank lengths {fill.choice.lengths} chosen by {rule} "
            f"({ranked[0][1]:.2f} nats, {len(ranked)} candidates{runner_up})",
            file=sys.stderr,
        )


def show_trajectory(fill: Infill, model, args: argparse.Namespace) -> None:
    if fill.trajectory is None:
        return
    if args.trajectory_png:
        save_trajectory_png(
            fill.trajectory, args.trajectory_png, row=fill.row, title=fill.source[:80], positions=fill.body
        )
    if args.watch:
        render_terminal(
            fill.trajectory,
            lambda token: model.domain.decode([token]),
            sys.stdout,
            row=fill.row,
            positions=fill.body,
        )

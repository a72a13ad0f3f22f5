"""`discrete-diff infill`: fill the blanks of text prompts, or scaffold protein motifs, with a trained model.

Text:     discrete-diff infill --checkpoint C --prompt "To be, or [MASK:12] the question"
Proteins: discrete-diff infill --checkpoint C --template "[5-15]MOTIFONE[10-30]MOTIFTWO[5-15]" --num 8 --out s.fasta
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..checkpoint import load_trained_model
from ..errors import UserInputError
from ..files import atomic_write_text
from ..infill import Infill, InfillRun, LikelihoodLength, infill_text, scaffold_proteins
from ..protein.fasta import ProteinRecord, write_fasta
from ..sampling.options import add_sampling_arguments, settings_from_args
from ..sampling.render import render_terminal, save_trajectory_png

NAME = "infill"
HELP = "fill blanks in text prompts ([MASK:N], [MASK:MIN-MAX]) or scaffold protein motifs ([5-15]MOTIF[10-30])"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a .ckpt written by `discrete-diff train`")
    parser.add_argument("--prompt", action="append", default=[], help="a text prompt with blanks (repeatable)")
    parser.add_argument("--prompt-file", default=None, help="text prompts, one per line (empty lines skipped)")
    parser.add_argument("--template", action="append", default=[], help="a protein template (repeatable)")
    parser.add_argument("--num", type=int, default=1, help="fills per prompt or template")
    parser.add_argument("--out", default=None, help="write here atomically (proteins: FASTA) instead of stdout")
    parser.add_argument("--free-motif-position", action="store_true", help="proteins: draw spacer lengths per sample")
    parser.add_argument("--allow-noncanonical", action="store_true", help="proteins: allow X, B, Z, U, O")
    parser.add_argument("--length-draws", type=int, default=16, help="time draws per candidate length's NELBO")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--watch", action="store_true", help="redraw the first fill step by step on the terminal")
    parser.add_argument("--trajectory-png", default=None, help="save the first fill's trajectory as a PNG")
    add_sampling_arguments(parser, default_steps=128)


def read_prompts(args: argparse.Namespace) -> list[str]:
    prompts = list(args.prompt)
    if args.prompt_file:
        path = Path(args.prompt_file).expanduser()
        if not path.is_file():
            raise UserInputError(f"--prompt-file {path}: file not found")
        prompts += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return prompts


def run(args: argparse.Namespace) -> int:
    prompts = read_prompts(args)
    if bool(prompts) == bool(args.template):
        raise UserInputError("give text prompts (--prompt / --prompt-file) or protein templates (--template), not both")
    if args.length_draws < 1:
        raise UserInputError(f"--length-draws must be at least 1, got {args.length_draws}")
    model = load_trained_model(args.checkpoint)
    options = dict(
        num=args.num,
        settings=settings_from_args(args),
        seed=args.seed,
        batch_size=args.batch_size,
        record=args.watch or bool(args.trajectory_png),
        length_rule=LikelihoodLength(args.length_draws),
    )
    if prompts:
        result = infill_text(model, prompts, **options)
        write_text(result, args.out)
    else:
        runs = [
            scaffold_proteins(
                model,
                template,
                free_motif_position=args.free_motif_position,
                allow_noncanonical=args.allow_noncanonical,
                **options,
            )  # fmt: skip
            for template in args.template
        ]
        result = InfillRun([i for r in runs for i in r.infills], sum(r.network_calls for r in runs))
        write_scaffolds(result, args.out)
    report_lengths(result)
    show_trajectory(result.infills[0], model.tokenizer, args)
    print(f"{len(result.infills)} fills, {result.network_calls} network calls", file=sys.stderr)
    return 0


def write_text(result: InfillRun, out: str | None) -> None:
    text = "".join(f"=== {i.source} ===\n{i.text}\n" for i in result.infills)
    if out:
        atomic_write_text(out, text)
    else:
        print(text, end="")


def write_scaffolds(result: InfillRun, out: str | None) -> None:
    records = []
    for n, infill in enumerate(result.infills):
        spacers = ",".join(map(str, infill.choice.lengths))
        records.append(
            ProteinRecord(f"scaffold_{n}", f"scaffold_{n} template={infill.source} spacers={spacers}", infill.text)
        )
    if out:
        write_fasta(out, records)
    else:
        print("".join(f">{r.description}\n{r.sequence}\n" for r in records), end="")


def report_lengths(result: InfillRun) -> None:
    """Say which length the likelihood rule chose for each template with a range blank."""
    seen = set()
    for infill in result.infills:
        if infill.choice.scores is None or infill.source in seen:
            continue
        seen.add(infill.source)
        ranked = sorted(infill.choice.scores.items(), key=lambda item: item[1])
        runner_up = f"; next {ranked[1][0]} at {ranked[1][1]:.2f}" if len(ranked) > 1 else ""
        print(
            f"{infill.source!r}: blank lengths {infill.choice.lengths} chosen by the NELBO of the given tokens "
            f"({ranked[0][1]:.2f} nats, {len(ranked)} candidates{runner_up})",
            file=sys.stderr,
        )


def show_trajectory(infill: Infill, tokenizer, args: argparse.Namespace) -> None:
    if infill.trajectory is None:
        return
    if args.trajectory_png:
        save_trajectory_png(
            infill.trajectory, args.trajectory_png, row=infill.row, title=infill.source[:80], positions=infill.body
        )
    if args.watch:
        render_terminal(
            infill.trajectory,
            lambda token: tokenizer.decode([token]),
            sys.stdout,
            row=infill.row,
            positions=infill.body,
        )

"""What step distillation can move: the teacher's one-call against two-call laws, per character, at each round.

A student distilled for S steps learns, at each masked position, the teacher's two-step law of the token revealed in
one of its steps (objectives/distillation.py); it starts as the teacher, whose own law there is its one call. So
the divergence between the two, per position, bounds how far a round can move the student's per-position laws: for
an exact denoiser it is zero (the two-step law of a position is then its one-call law), and what few steps lose to
the factorisation (positions revealed in one step are drawn independently) is out of any per-position student's
reach. For each student step count S (the rounds of `distill/shakespeare_char`, 128 .. 8), on the held-out windows
of the teacher's data: rows stratified over the S-step grid; per row the mean, over the positions masked at its t
and kept by the distillation loss, of KL(target || one call) in bits. Each position is revealed in one of the S
steps, each with probability 1/S under the log-linear schedule, so the mean over rows is bits per character. The
target is estimated with one draw of the teacher's first half-step and KL is convex in it, so each value is an
upper bound on the KL to the exact two-step law. Compare with what S steps lose in judge bits per character
against 256 (benchmarks/speed.py's ancestral rows on the same teacher).
Command: `python benchmarks/distill_gap.py --teacher C [--data-dir DIR] [--quick | --smoke] [--out DIR]`.
"""

from __future__ import annotations

import math
import sys

import common
import torch

from discrete_diff.inference import load_model
from discrete_diff.objectives.distillation import per_position, step_process, two_steps
from discrete_diff.objectives.divergences import forward_kl, reverse_kl
from discrete_diff.process import stratified_uniforms
from discrete_diff.training.data import SequenceDataModule

NAME = "distill_gap"
SIZES = {
    # steps: student step counts; batches x batch: held-out windows per step count.
    "full": {"steps": (128, 64, 32, 16, 8), "batches": 16, "batch": 16},
    "quick": {"steps": (32, 8), "batches": 4, "batch": 8},
    "smoke": {"steps": (8,), "batches": 1, "batch": 2},
}  # fmt: skip
BITS = 1.0 / math.log(2.0)


@torch.no_grad()
def gap_row(model, data: SequenceDataModule, steps: int, size: dict, generator: torch.Generator) -> dict:
    """Per-character KL(target || one call) and KL(one call || target) in bits for an S-step student."""
    process = step_process(model.objective, model.process)
    network = model.network.eval()
    forward, reverse = [], []
    for number, batch in enumerate(data.validation_batches(size["batch"])):
        if number == size["batches"]:
            break
        offset = torch.rand((), generator=generator, dtype=torch.float64)
        index = (stratified_uniforms(offset, batch.size) * steps).long()  # (B,) stratified over the grid
        grid = two_steps(index, steps, process.schedule)
        tokens, scored = process.noise(batch, grid.t, generator)  # (B, L) each
        target, kept = process.target(network, batch, tokens, scored, grid, generator)  # (N, V), (B, L)
        one_call = process.student_law(network, batch, tokens, scored, grid)  # (N, V)
        row_of = per_position(torch.arange(batch.size, dtype=torch.float64), scored).squeeze(-1).long()  # (N,)
        keep = kept[scored]  # (N,)
        for values, out in ((forward_kl(one_call, target), forward), (reverse_kl(one_call, target), reverse)):
            total = torch.zeros(batch.size, dtype=torch.float64).index_add(0, row_of[keep], values[keep].double())
            count = torch.zeros(batch.size, dtype=torch.float64).index_add(
                0, row_of[keep], torch.ones(int(keep.sum()), dtype=torch.float64)
            )
            out.extend((total[count > 0] / count[count > 0] * BITS).tolist())  # per row: mean bits per kept position
    return {"student steps": steps, "rows": len(forward),
            "KL(target || one call) bits/char": common.spread(forward),
            "KL(one call || target) bits/char": common.spread(reverse)}  # fmt: skip


def run(argv: list[str] | None = None) -> int:
    options = common.parser(NAME, __doc__.splitlines()[0])
    options.add_argument("--teacher", required=True, help="a masked-diffusion checkpoint (the default model)")
    options.add_argument("--data-dir", default=str(common.REPO / "data"), help="where built-in sets are kept")
    args = options.parse_args(argv)
    mode = common.mode(args)
    size = SIZES[mode]
    model = load_model(args.teacher)
    data = common.trained_data(model.data["datamodule"], args.data_dir)
    generator = torch.Generator().manual_seed(0)
    rows = []
    for steps in size["steps"]:
        rows.append(gap_row(model, data, steps, size, generator))
        mean = rows[-1]["KL(target || one call) bits/char"]["mean"]
        print(f"S = {steps}: KL(target || one call) {mean:.4f} bits/char", file=sys.stderr)
    total = sum(r["KL(target || one call) bits/char"]["mean"] for r in rows)
    payload = {"benchmark": NAME, "mode": mode, "machine": common.machine(), "size": size, "teacher": args.teacher,
               "rows": rows, "sum over rounds, bits/char": total}  # fmt: skip
    table = common.markdown_table(rows, list(rows[0]))
    report = common.write_report(args.out, NAME, payload, {"One call against the two-step target, per round": table})
    print(report.read_text())
    print(f"sum over the rounds: {total:.4f} bits/char")
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(NAME, run))

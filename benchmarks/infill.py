"""Infilling on held-out text: the blank's NELBO under the model, the wall time per infill, and the length rule.

For N held-out lines (the validation works of the checkpoint's corpus, or `--lines FILE`), a blank of 10 to 30
tokens at a random place in the line is measured three ways:
- the blank's NELBO given the rest of the line (K stratified time draws, only the blank's positions masked): an upper
  bound on -log p(blank | line), in bits per token and per character of the blank;
- one infill per line per strategy (batch 1): wall time, network calls, and the fraction of blank tokens equal to
  the original (a sanity number, not a quality measure: many fills are plausible);
- the unknown-length rule: the blank given as the range [n - 5, n + 5]; how often it picks the true length n.

    .venv/bin/python benchmarks/infill.py --checkpoint runs/.../last.ckpt     # 200 lines
    .venv/bin/python benchmarks/infill.py --quick    # trains a tiny model for a few seconds on two works
"""

from __future__ import annotations

import math
import random
import sys
import tempfile
from pathlib import Path

import common
import torch

from discrete_diff.batch import Batch
from discrete_diff.commands.train import build_cli, fit
from discrete_diff.errors import UserInputError
from discrete_diff.inference import TrainedModel, load_model
from discrete_diff.infill import Blank, LikelihoodLength, Scorer, TokenTemplate, infill_templates
from discrete_diff.process import stratified_uniforms
from discrete_diff.sampling import STRATEGIES, SamplingSettings
from discrete_diff.text.sources import find_documents, split_documents
from discrete_diff.training.text_data import resolve_corpus

SIZES = {
    "smoke": {"lines": 3, "train_steps": 20, "time_draws": 2, "length_draws": 2},
    "quick": {"lines": 20, "train_steps": 300, "time_draws": 8, "length_draws": 8},
    "full": {"lines": 200, "train_steps": 0, "time_draws": 16, "length_draws": 16},
}
QUICK_WORKS = ("sonnets_gut.txt", "lovers_complaint_gut.txt")
QUICK_HELD_OUT = "passionate_pilgrim_gut.txt"
BLANK = (10, 30)
CONTEXT = 10
"""Given tokens a line keeps besides its blank, at least."""


def held_out_lines(model: TrainedModel, lines_file: str | None) -> list[str]:
    if lines_file:
        path = Path(lines_file).expanduser()
        if not path.is_file():
            raise UserInputError(f"--lines {path}: file not found")
        return path.read_text(encoding="utf-8").splitlines()
    spec = model.data.get("datamodule", {}).get("init_args", {})
    if "corpus" not in spec:
        raise UserInputError("the checkpoint records no text corpus: give the held-out lines with --lines FILE")
    documents = find_documents(resolve_corpus(spec["corpus"], spec.get("data_dir", "data")))
    _, validation = split_documents(documents, spec.get("val_fraction", 0.1))
    return [line for document in validation for chunk in document.chunks() for line in chunk.splitlines()]


def blank_cases(model: TrainedModel, lines: list[str], count: int, seed: int) -> list[tuple[list[int], int, int]]:
    """(token ids of a line, blank start, blank length) for `count` lines long enough for a blank and context."""
    rng = random.Random(seed)
    limit = model.max_length
    encoded = [model.tokenizer(line.strip(), add_special_tokens=False)["input_ids"] for line in lines]
    usable = [ids for ids in encoded if BLANK[0] + CONTEXT <= len(ids) <= limit]
    if not usable:
        raise UserInputError(f"no held-out line has {BLANK[0] + CONTEXT} to {limit} tokens")
    cases = []
    for ids in rng.sample(usable, min(count, len(usable))):
        length = rng.randint(BLANK[0], min(BLANK[1], len(ids) - CONTEXT))
        cases.append((ids, rng.randint(0, len(ids) - length), length))
    return cases


def template(ids: list[int], start: int, length: int, blank: Blank) -> TokenTemplate:
    pieces = (tuple(ids[:start]), blank, tuple(ids[start + length :]))
    return TokenTemplate(tuple(p for p in pieces if p != ()))


@torch.no_grad()
def blank_nelbo(model: TrainedModel, case: tuple[list[int], int, int], draws: int, seed: int) -> float:
    """NELBO of the blank given the rest of its line, in nats, averaged over stratified draws (`bound_at`)."""
    ids, start, length = case
    tokens = torch.tensor([ids])  # (1, L)
    maskable = torch.zeros_like(tokens, dtype=torch.bool)
    maskable[0, start : start + length] = True
    batch = Batch(tokens, torch.ones_like(maskable), maskable)
    generator = torch.Generator().manual_seed(seed)
    u = stratified_uniforms(torch.rand((), generator=generator, dtype=torch.float64), draws)  # (K,)
    total = 0.0
    for k in range(draws):
        bound = model.objective.bound_at(model.network, batch, u[k : k + 1], model.mask_id, generator)
        total += float(bound.per_sequence)
    return total / draws


def measure_infill(model: TrainedModel, case, settings: SamplingSettings, seed: int) -> dict[str, float]:
    ids, start, length = case
    seconds, run = common.timed(
        lambda: infill_templates(model, [template(ids, start, length, Blank(length, length))], ["line"],
                                 settings=settings, seed=seed)
    )  # fmt: skip
    filled = run.infills[0].tokens[start : start + length]
    same = float((filled == torch.tensor(ids[start : start + length])).double().mean())
    return {"seconds": seconds, "calls": run.network_calls, "same": same}


def measure_length_rule(model: TrainedModel, case, draws: int, seed: int) -> dict[str, float]:
    ids, start, length = case
    blank = Blank(max(1, length - 5), length + 5)
    rule = LikelihoodLength(time_draws=draws)
    scorer = Scorer(model.network, model.objective, model.mask_id, model.tokenizer.pad_token_id)
    seconds, choices = common.timed(
        lambda: rule.choose(template(ids, start, length, blank), 1, scorer, torch.Generator().manual_seed(seed))
    )
    chosen = choices[0].lengths[0]
    return {"seconds": seconds, "error": abs(chosen - length), "exact": float(chosen == length)}


def train_tiny(corpus: Path, steps: int, out: Path) -> str:
    cli = build_cli(
        ["--config", "tiny", "--data.init_args.corpus", str(corpus),
         "--trainer.max_steps", str(steps), "--trainer.val_check_interval", str(steps),
         "--trainer.logger.init_args.save_dir", str(out), "--trainer.enable_progress_bar", "false"]
    )  # fmt: skip
    fit(cli)
    return cli.trainer.checkpoint_callback.last_model_path


def quick_model(args, size: dict, scratch: Path) -> tuple[str, str]:
    """A tiny model trained on two works (or --corpus), and held-out lines from a third work (or --lines)."""
    if args.corpus:
        corpus = Path(args.corpus)
    else:
        from discrete_diff.text.shakespeare import fetch_shakespeare

        works = fetch_shakespeare(common.REPO / "data")
        corpus = scratch / "corpus"
        corpus.mkdir()
        for name in QUICK_WORKS:
            (corpus / name).write_text((works / name).read_text(encoding="utf-8"), encoding="utf-8")
        args.lines = args.lines or str(works / QUICK_HELD_OUT)
    return train_tiny(corpus, size["train_steps"], scratch / "runs"), args.lines


def run(argv: list[str] | None = None) -> int:
    parser = common.parser("infill", __doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="a text model (required without --quick / --smoke)")
    parser.add_argument("--lines", default=None, help="held-out lines, one per line (default: validation works)")
    parser.add_argument("--corpus", default=None, help="--quick/--smoke: train the tiny model on this text")
    parser.add_argument("--num-lines", type=int, default=None, help="how many lines (default by mode)")
    parser.add_argument("--strategies", default="ancestral,first-hitting,confidence", help="comma-separated")
    parser.add_argument("--steps", type=int, default=32, help="steps of the step-based strategies")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    size = SIZES[common.mode(args)]
    strategies = args.strategies.split(",")
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise UserInputError(f"--strategies: unknown {unknown}; choose from {', '.join(STRATEGIES)}")
    common.positive(args.steps, "--steps")
    with tempfile.TemporaryDirectory() as scratch:
        if args.checkpoint is None:
            if common.mode(args) == "full":
                raise UserInputError("--checkpoint is required (or use --quick / --smoke to train a tiny model)")
            args.checkpoint, args.lines = quick_model(args, size, Path(scratch))
        model = load_model(args.checkpoint)
        cases = blank_cases(model, held_out_lines(model, args.lines), args.num_lines or size["lines"], args.seed)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # batch-1 infills of a small model: one thread is fastest on a shared machine
        try:
            payload = measure(model, cases, strategies, args, size)
        finally:
            torch.set_num_threads(threads)
    payload.update(mode=common.mode(args), machine=common.machine(), checkpoint=str(args.checkpoint))
    path = common.write_report(args.out, "infill", payload, tables(payload))
    print(path.read_text())
    return 0


def measure(model: TrainedModel, cases, strategies: list[str], args, size: dict) -> dict:
    nats = [blank_nelbo(model, case, size["time_draws"], args.seed + i) for i, case in enumerate(cases)]
    characters = [len(model.tokenizer.decode(ids[s : s + n])) for ids, s, n in cases]
    tokens = [n for _, _, n in cases]
    rows = []
    for name in strategies:
        settings = SamplingSettings(strategy=STRATEGIES[name](), steps=args.steps)
        found = [measure_infill(model, case, settings, args.seed + i) for i, case in enumerate(cases)]
        rows.append({
            "strategy": name,
            "steps": args.steps if name != "first-hitting" else None,
            "seconds per infill": common.spread([f["seconds"] for f in found]),
            "network calls": common.spread([f["calls"] for f in found]),
            "tokens equal to the original": common.spread([f["same"] for f in found]),
        })  # fmt: skip
    lengths = [measure_length_rule(model, case, size["length_draws"], args.seed + i) for i, case in enumerate(cases)]
    return {
        "lines": len(cases),
        "blank tokens": common.spread(tokens),
        "blank NELBO bits/token": common.spread([x / n / math.log(2) for x, n in zip(nats, tokens, strict=True)]),
        "blank NELBO bits/char": common.spread([x / c / math.log(2) for x, c in zip(nats, characters, strict=True)]),
        "time draws": size["time_draws"],
        "infill": rows,
        "length rule": {
            "candidates": 11,
            "exact": common.spread([r["exact"] for r in lengths]),
            "abs error (tokens)": common.spread([r["error"] for r in lengths]),
            "seconds per choice": common.spread([r["seconds"] for r in lengths]),
            "time draws": size["length_draws"],
        },
    }


def tables(payload: dict) -> dict[str, str]:
    nelbo_row = {k: payload[k] for k in ("lines", "blank tokens", "blank NELBO bits/token", "blank NELBO bits/char")}
    columns = ["strategy", "steps", "seconds per infill", "network calls", "tokens equal to the original"]
    rule = payload["length rule"]
    return {
        f"Blank NELBO (upper bound, K={payload['time draws']} time draws)": common.markdown_table(
            [nelbo_row], list(nelbo_row)
        ),
        "Infill, batch 1": common.markdown_table(payload["infill"], columns),
        "Unknown length: range [n-5, n+5], 11 candidates": common.markdown_table([rule], list(rule)),
    }


if __name__ == "__main__":
    sys.exit(common.main_guard("infill", run))

"""Infilling: lay templates out with their given tokens pinned and let the one sampling loop fill the blanks.

One API for every domain: the model's domain parses the prompt (text with `[MASK:N]` blanks, or a protein
template `[5-15]MOTIF[10-30]`), says which ids a fill may not contain, and decodes the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..block_generation import continue_blocks
from ..errors import InvalidArgument, UserInputError
from ..generation import denoise
from ..inference import TrainedModel
from ..objectives import Decoding
from ..sampling import SamplingSettings, StepCallback, Trajectory
from ..templates import Blank, TokenTemplate
from .lengths import LengthChoice, LengthPrior, LengthRule, LikelihoodLength, Scorer
from .window import stack_rows, window_row


@dataclass(frozen=True)
class Infill:
    """One filled template."""

    source: str
    """The prompt or template it came from."""
    choice: LengthChoice
    """The blank lengths used (and, where the likelihood rule chose them, every candidate's score)."""
    tokens: Tensor
    """(L,) the whole row, framing included."""
    given: Tensor
    """(L,) bool: positions that came from the template."""
    text: str
    """The filled sequence, decoded without framing."""
    fills: list[str]
    """What each blank was filled with, decoded."""
    body: slice
    """The positions of `tokens` between the framing (what `text` decodes)."""
    trajectory: Trajectory | None = None
    """The sampling run of its batch (when recorded); this infill is row `row` of it."""
    row: int = 0


@dataclass(frozen=True)
class InfillRun:
    infills: list[Infill]
    network_calls: int


def _check_length(template: TokenTemplate, model: TrainedModel, where: str) -> None:
    limit = model.max_length
    if template.longest() > limit:
        raise UserInputError(
            f"{where}: {template.longest()} tokens with the longest blanks, "
            f"more than the model's maximum length {limit}"
        )


def _check_scored_lengths(template: TokenTemplate, model: TrainedModel, rule: LengthRule, where: str) -> None:
    """A blank length chosen by the masked-diffusion bound needs the absorbing process (lengths.py)."""
    scored = rule.scored_blanks(template)
    if scored and model.process.revises:
        raise UserInputError(
            f"{where}: the blank of {scored[0].minimum}-{scored[0].maximum} tokens would have its length chosen by "
            f"the masked-diffusion bound of the given tokens, which {model.objective.kind} lacks (noise in a blank "
            "reads as text); give the blank a fixed length, or draw one per fill (--free-motif-position)"
        )


def infill_templates(
    model: TrainedModel,
    templates: Sequence[TokenTemplate],
    sources: Sequence[str],
    *,
    num: int = 1,
    settings: SamplingSettings | None = None,
    label: str | None = None,
    length_rule: LengthRule | None = None,
    banned: Sequence[int] = (),
    seed: int = 0,
    batch_size: int = 32,
    record: bool = False,
    on_step: StepCallback | None = None,
    names: Sequence[str] | None = None,
) -> InfillRun:
    """`num` fills of every template; given tokens come back exactly, only the blanks are generated.

    `banned` ids never appear in a fill; `names` say which template an error is about (default: "template 1", ...).
    `label` conditions a labelled model (None: the null label). A guidance scale in `settings` steers each fill
    toward the label and toward the template's given tokens: the unconditional pass sees the null label and the
    given tokens masked (framing excepted). A block-diffusion model continues its prompt, steered by the label only.
    """
    if num < 1:
        raise InvalidArgument("num", f"must be at least 1, got {num}")
    names = names or [f"template {i + 1}" for i in range(len(templates))]
    settings = settings or model.default_settings()
    model.class_labels(label, 1)  # an unknown label fails before any scoring or sampling
    if model.objective.decoding is Decoding.BLOCKS:  # blocks decode left to right: a fill continues its prompt
        return _continue(model, templates, sources, names, num, settings, label, banned, seed, batch_size)
    if not model.objective.two_sided_infill:
        raise UserInputError(
            "infilling needs a masked-diffusion model; this checkpoint was trained with "
            f"{type(model.objective).__name__}"
        )
    length_rule = length_rule or LikelihoodLength()
    for template, name in zip(templates, names, strict=True):
        _check_length(template, model, name)
        _check_scored_lengths(template, model, length_rule, name)
    generator = torch.Generator().manual_seed(seed)
    prior = LengthPrior.from_histogram(model.data.get("lengths"), model.length_limit)
    label_ids = model.class_labels(label, 1)
    scorer = Scorer(
        model.network, model.objective, model.mask_id, model.tokenizer.pad_token_id, prior,
        None if label_ids is None else int(label_ids[0]),
    )  # fmt: skip
    jobs = [
        (template, source, choice)
        for template, source in zip(templates, sources, strict=True)
        for choice in length_rule.choose(template, num, scorer, generator)
    ]
    infills, calls = [], 0
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start : start + batch_size]
        # The window the length rule scored in (window.py); padding and given tokens are pinned.
        rows = [window_row(template, choice.lengths, model.mask_id) for template, _, choice in batch]
        tokens, given, attention = stack_rows(rows, model.tokenizer.pad_token_id)  # (B, W) each
        pinned = given | ~attention
        special = torch.tensor(sorted(set(model.tokenizer.all_special_ids)))
        result = denoise(
            model, tokens, settings, pinned=pinned, attention_mask=attention, banned=banned,
            class_labels=model.class_labels(label, len(batch)), prompt=given & ~torch.isin(tokens, special),
            generator=generator, record=record, on_step=on_step,
        )  # fmt: skip
        calls += result.network_calls
        for row, (template, source, choice) in enumerate(batch):
            length = template.length(choice.lengths)  # the template's own positions, not the window after it
            filled, row_given = result.tokens[row, :length], given[row, :length]
            infills.append(_describe(model, template, source, choice, filled, row_given, result.trajectory, row))
    return InfillRun(infills, calls)


def _continue(model, templates, sources, names, num, settings, label, banned, seed, batch_size) -> InfillRun:
    """A block-diffusion model writes left to right: it fills a template whose blanks all come at its end (a
    continuation of any length, each range blank at its maximum, then the framing), and refuses any other."""
    generator = torch.Generator().manual_seed(seed)
    infills, calls = [], 0
    for template, source, name in zip(templates, sources, names, strict=True):
        segments = list(template.segments)
        while segments and isinstance(segments[-1], Blank):
            segments.pop()
        if any(isinstance(segment, Blank) for segment in segments):
            raise UserInputError(
                f"{name}: a block-diffusion model only continues text (blanks at the end); to fill a blank with "
                "text on both sides, use a masked-diffusion model"
            )
        choice = LengthChoice(tuple(blank.maximum for blank in template.blanks))
        ids, given = template.layout(choice.lengths, model.mask_id)
        blanks = slice(len(ids) - len(template.tail) - sum(choice.lengths), len(ids) - len(template.tail))
        for start in range(0, num, batch_size):
            prompt = ids[: blanks.start].expand(min(batch_size, num - start), -1)  # (B, P)
            result = continue_blocks(
                model, prompt, sum(choice.lengths), settings, banned=banned, generator=generator,
                class_labels=model.class_labels(label, len(prompt)), stop_at_eos=False,
            )  # fmt: skip
            calls += result.network_calls
            for row, tokens in enumerate(result.tokens):
                filled = ids.clone()
                filled[blanks] = tokens
                infills.append(_describe(model, template, source, choice, filled, given, None, row))
    return InfillRun(infills, calls)


def _describe(model, template, source, choice, filled, given, trajectory, row) -> Infill:
    """Split a filled row back into the template's pieces."""
    body = slice(len(template.head), len(filled) - len(template.tail))
    fills, position, lengths = [], len(template.head), iter(choice.lengths)
    for segment in template.segments:
        size = next(lengths) if isinstance(segment, Blank) else len(segment)
        if isinstance(segment, Blank):
            fills.append(filled[position : position + size].tolist())
        position += size
    decode = model.domain.decode
    return Infill(
        source=source,
        choice=choice,
        tokens=filled,
        given=given,
        text=decode(filled[body].tolist()),
        fills=[decode(ids) for ids in fills],
        body=body,
        trajectory=trajectory,
        row=row,
    )


def infill(
    model: TrainedModel,
    prompts: Sequence[str],
    *,
    allow_noncanonical: bool = False,
    **options,
) -> InfillRun:
    """Fill the blanks of prompts in the model's domain: text with `[MASK:N]` / `[MASK:MIN-MAX]` blanks, or
    protein templates such as `[5-15]MOTIFONE[10-30]MOTIFTWO[5-15]` (syntax: discrete_diff.templates.syntax).

    `options` go to `infill_templates` (num, settings, label, length_rule, seed, batch_size, record, on_step).
    """
    if not prompts:
        raise UserInputError("no prompt given")
    names = ["prompt"] if len(prompts) == 1 else [f"prompt {i + 1}" for i in range(len(prompts))]
    domain = model.domain
    templates = [
        domain.parse_template(prompt, name, allow_noncanonical=allow_noncanonical)
        for prompt, name in zip(prompts, names, strict=True)
    ]
    banned = domain.banned_ids(allow_noncanonical=allow_noncanonical, document_breaks=False)
    return infill_templates(model, templates, list(prompts), banned=banned, names=names, **options)

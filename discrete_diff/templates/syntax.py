"""Infilling templates: given pieces and blanks, parsed from text prompts or protein motif strings.

Text syntax: `[MASK:N]` is a blank of N tokens, `[MASK:MIN-MAX]` a blank whose length (MIN to MAX tokens, MIN may be
0) the library chooses. Everything else is given text. A backslash escapes a following `[` or backslash: `\\[MASK:3]`
is the literal text `[MASK:3]`, `\\\\` a literal backslash; any other backslash stands for itself.

Protein syntax: `[N]` or `[MIN-MAX]` is a spacer (blank) of residues, letters are given residues (motifs), spaces
are ignored: `[5-15]MOTIFONE[10-30]MOTIFTWO[5-15]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import UserInputError


@dataclass(frozen=True)
class Blank:
    """minimum..maximum positions to generate (equal for a blank of known length)."""

    minimum: int
    maximum: int

    @property
    def fixed(self) -> bool:
        return self.minimum == self.maximum


@dataclass(frozen=True)
class Given:
    """Given text (or residues); `start` is where it begins in the source string, for error messages."""

    text: str
    start: int = field(default=0, compare=False)


Segment = Given | Blank


@dataclass(frozen=True)
class Template:
    segments: tuple[Segment, ...]

    @property
    def blanks(self) -> list[Blank]:
        return [s for s in self.segments if isinstance(s, Blank)]


TEXT_BLANK = re.compile(r"\[MASK:(\d+)(?:-(\d+))?\]")
PROTEIN_BLANK = re.compile(r"\[(\d+)(?:-(\d+))?\]")


def _blank(match: re.Match, where: str, position: int) -> Blank:
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) is not None else low
    if low > high:
        raise UserInputError(f"{where}: blank range {low}-{high} at character {position + 1} has min > max")
    if high < 1:
        raise UserInputError(f"{where}: blank at character {position + 1} has length 0")
    return Blank(low, high)


def _require_blanks(segments: list[Segment], where: str, example: str) -> Template:
    if not any(isinstance(s, Blank) for s in segments):
        raise UserInputError(f"{where}: no blank to fill; mark one with {example}")
    return Template(tuple(segments))


def parse_text_template(prompt: str, where: str = "prompt") -> Template:
    """Parse a text prompt with `[MASK:N]` / `[MASK:MIN-MAX]` blanks; malformed ones raise UserInputError."""
    segments: list[Segment] = []
    literal: list[str] = []
    literal_start, i = 0, 0
    while i < len(prompt):
        if prompt[i] == "\\" and prompt[i + 1 : i + 2] in ("[", "\\"):
            literal.append(prompt[i + 1])
            i += 2
        elif prompt.startswith("[MASK", i):
            match = TEXT_BLANK.match(prompt, i)
            if match is None:
                raise UserInputError(
                    f"{where}: malformed blank at character {i + 1}: write [MASK:N] or [MASK:MIN-MAX] "
                    "(or \\[MASK for the literal text)"
                )
            if literal:
                segments.append(Given("".join(literal), literal_start))
                literal = []
            segments.append(_blank(match, where, i))
            i = match.end()
            literal_start = i
        else:
            literal.append(prompt[i])
            i += 1
    if literal:
        segments.append(Given("".join(literal), literal_start))
    return _require_blanks(segments, where, "[MASK:N] or [MASK:MIN-MAX]")


def render_text_template(template: Template) -> str:
    """The prompt string that parses back to this template (given text escaped)."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("[MASK", "\\[MASK")

    def blank(b: Blank) -> str:
        return f"[MASK:{b.minimum}]" if b.fixed else f"[MASK:{b.minimum}-{b.maximum}]"

    return "".join(escape(s.text) if isinstance(s, Given) else blank(s) for s in template.segments)


def parse_protein_template(text: str, where: str = "template") -> Template:
    """Parse `[5-15]MOTIF[10-30]...`: bracketed spacers and residue letters (checked against the alphabet later)."""
    segments: list[Segment] = []
    residues: list[str] = []
    residues_start, i = 0, 0
    while i < len(text):
        char = text[i]
        if char == "[":
            match = PROTEIN_BLANK.match(text, i)
            if match is None:
                raise UserInputError(f"{where}: malformed spacer at character {i + 1}: write [N] or [MIN-MAX]")
            if residues:
                segments.append(Given("".join(residues), residues_start))
                residues = []
            segments.append(_blank(match, where, i))
            i = match.end()
            residues_start = i
        elif char.isspace():
            i += 1
        elif char.isalpha():
            if not residues:
                residues_start = i
            residues.append(char.upper())
            i += 1
        else:
            raise UserInputError(f"{where}: unexpected {char!r} at character {i + 1}: expected a residue or [MIN-MAX]")
    if residues:
        segments.append(Given("".join(residues), residues_start))
    return _require_blanks(segments, where, "[N] or [MIN-MAX]")


def render_protein_template(template: Template) -> str:
    def blank(b: Blank) -> str:
        return f"[{b.minimum}]" if b.fixed else f"[{b.minimum}-{b.maximum}]"

    return "".join(s.text if isinstance(s, Given) else blank(s) for s in template.segments)

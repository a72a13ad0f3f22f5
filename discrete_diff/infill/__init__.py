"""Infilling: templates with given pieces and blanks (text prompts, protein motif scaffolds), one API for both."""

from ..templates import (
    Blank,
    Given,
    Template,
    TokenTemplate,
    parse_protein_template,
    parse_text_template,
    render_protein_template,
    render_text_template,
)
from .api import Infill, InfillRun, infill, infill_templates
from .lengths import LengthChoice, LengthRule, LikelihoodLength, Scorer, UniformLength, given_token_nelbo

__all__ = [
    "Blank",
    "Given",
    "Infill",
    "InfillRun",
    "LengthChoice",
    "LengthRule",
    "LikelihoodLength",
    "Scorer",
    "Template",
    "TokenTemplate",
    "UniformLength",
    "given_token_nelbo",
    "infill",
    "infill_templates",
    "parse_protein_template",
    "parse_text_template",
    "render_protein_template",
    "render_text_template",
]

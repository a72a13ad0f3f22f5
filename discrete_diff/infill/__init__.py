"""Infilling: templates with given pieces and blanks (text prompts, protein motif scaffolds), one API for both."""

from .api import Infill, InfillRun, infill_templates, infill_text, scaffold_proteins
from .layout import TokenTemplate, tokenize_protein_template, tokenize_text_template
from .lengths import LengthChoice, LengthRule, LikelihoodLength, Scorer, UniformLength, given_token_nelbo
from .template import (
    Blank,
    Given,
    Template,
    parse_protein_template,
    parse_text_template,
    render_protein_template,
    render_text_template,
)

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
    "infill_templates",
    "infill_text",
    "parse_protein_template",
    "parse_text_template",
    "render_protein_template",
    "render_text_template",
    "scaffold_proteins",
    "tokenize_protein_template",
    "tokenize_text_template",
]

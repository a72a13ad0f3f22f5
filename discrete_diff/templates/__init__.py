"""Templates with given pieces and blanks: their syntax (text prompts, protein motifs) and their token layout."""

from .layout import TokenTemplate, tokenize_protein_template, tokenize_text_template
from .syntax import (
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
    "Template",
    "TokenTemplate",
    "parse_protein_template",
    "parse_text_template",
    "render_protein_template",
    "render_text_template",
    "tokenize_protein_template",
    "tokenize_text_template",
]

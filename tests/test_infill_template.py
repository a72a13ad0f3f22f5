"""Template parsing, property-based: accepted templates round-trip to the same pieces and positions; malformed
ones raise UserInputError naming the problem and its position."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from discrete_diff.errors import UserInputError
from discrete_diff.infill import (
    Blank,
    Given,
    Template,
    TokenTemplate,
    parse_protein_template,
    parse_text_template,
    render_protein_template,
    render_text_template,
)
from discrete_diff.protein.domain import ProteinDomain
from discrete_diff.protein.tokenizer import CANONICAL_AMINO_ACIDS, build_protein_tokenizer
from discrete_diff.text.domain import TextDomain
from discrete_diff.text.tokenizers import CharacterTokenizer


@st.composite
def blanks(draw):
    low = draw(st.integers(0, 30))
    high = draw(st.integers(max(low, 1), 40))
    return Blank(low, high)


def templates(text):
    """Given pieces (non-empty, never two in a row) around at least one blank."""

    @st.composite
    def build(draw):
        segments = []
        for blank in draw(st.lists(blanks(), min_size=1, max_size=4)):
            if draw(st.booleans()):
                segments.append(Given(draw(text)))
            segments.append(blank)
        if draw(st.booleans()):
            segments.append(Given(draw(text)))
        return Template(tuple(segments))

    return build()


# Characters that exercise the escapes: brackets, backslashes and pieces of the blank syntax.
TRICKY_TEXT = st.text(st.sampled_from(list("ab [MASK:1-]\\é\n")), min_size=1, max_size=12)


@given(templates(TRICKY_TEXT))
def test_text_templates_round_trip(template):
    assert parse_text_template(render_text_template(template)) == template


@given(st.text(st.sampled_from(list("ab [MASK:12-]\\")), max_size=30))
def test_any_accepted_prompt_round_trips_and_any_refused_one_names_a_position(prompt):
    try:
        parsed = parse_text_template(prompt)
    except UserInputError as error:
        message = str(error)
        assert "\n" not in message
        assert "no blank" in message or re.search(r"at character \d+", message)
        return
    assert parse_text_template(render_text_template(parsed)) == parsed


@given(templates(TRICKY_TEXT), st.data())
def test_layout_puts_every_given_piece_at_its_offset(template, data):
    tokens = TokenTemplate(tuple(s if isinstance(s, Blank) else tuple(map(ord, s.text)) for s in template.segments))
    lengths = [data.draw(st.integers(b.minimum, b.maximum)) for b in template.blanks]
    ids, given = tokens.layout(lengths, mask_id=-1)
    assert len(ids) == tokens.length(lengths)
    assert "".join(map(chr, ids[given].tolist())) == "".join(s.text for s in template.segments if isinstance(s, Given))
    assert (ids[~given] == -1).sum() == sum(lengths)
    offset = 0
    pieces = iter(lengths)
    for segment in template.segments:  # each piece starts where the previous ones end
        size = next(pieces) if isinstance(segment, Blank) else len(segment.text)
        if isinstance(segment, Given):
            assert "".join(map(chr, ids[offset : offset + size].tolist())) == segment.text
        offset += size


@pytest.mark.parametrize(
    ("prompt", "position"),
    [("To be [MASK] or", 7), ("ab[MASK:]", 3), ("[MASK:x]", 1), ("x [MASK:3", 3), ("a[MASK:3-]", 2), ("[MASK :3]", 1)],
)
def test_malformed_blanks_name_their_position(prompt, position):
    with pytest.raises(UserInputError, match=rf"malformed blank at character {position}:"):
        parse_text_template(prompt)


def test_range_and_count_errors():
    with pytest.raises(UserInputError, match=r"range 9-3 at character 4 has min > max"):
        parse_text_template("ab [MASK:9-3]")
    with pytest.raises(UserInputError, match="length 0"):
        parse_text_template("ab [MASK:0]")
    with pytest.raises(UserInputError, match="no blank to fill"):
        parse_text_template("no blanks here \\[MASK:3]")


def test_escapes_and_shapes():
    assert parse_text_template("\\[MASK:3] is literal [MASK:2]").segments == (
        Given("[MASK:3] is literal "),
        Blank(2, 2),
    )
    assert parse_text_template("C:\\dir\\\\ [MASK:1-4]").segments == (Given("C:\\dir\\ "), Blank(1, 4))
    assert parse_text_template("[MASK:5]").segments == (Blank(5, 5),)  # no prompt at all
    prefix, suffix = parse_text_template("Once [MASK:3-9]"), parse_text_template("[MASK:4] end.")
    assert isinstance(prefix.segments[0], Given) and isinstance(suffix.segments[-1], Given)


def test_unknown_characters_are_named_with_their_position():
    tokenizer = CharacterTokenizer().build(lambda: iter(["hello world"]))
    domain = TextDomain(tokenizer)
    template = domain.parse_template("hello [MASK:3] world", "prompt")
    assert template.segments[0] == tuple(tokenizer("hello ", add_special_tokens=False)["input_ids"])
    assert template.head == template.tail == ()  # text blocks have no framing
    with pytest.raises(UserInputError, match=r"prompt: 'x' at character 17 is not in the model's vocabulary"):
        domain.parse_template("hello [MASK:3] wxrld", "prompt")


PROTEIN_TEXT = st.text(st.sampled_from(list(CANONICAL_AMINO_ACIDS)), min_size=1, max_size=10)


@given(templates(PROTEIN_TEXT))
def test_protein_templates_round_trip(template):
    assert parse_protein_template(render_protein_template(template)) == template


def test_protein_templates_frame_motifs_and_check_residues():
    tokenizer = build_protein_tokenizer()
    domain = ProteinDomain(tokenizer)
    template = parse_protein_template("[5-15]mkv [3] WW[2-4]")
    assert template.segments == (Blank(5, 15), Given("MKV"), Blank(3, 3), Given("WW"), Blank(2, 4))
    tokens = domain.parse_template("[5-15]mkv [3] WW[2-4]", "template")
    assert tokens.head == (tokenizer.cls_token_id,) and tokens.tail == (tokenizer.eos_token_id,)
    with pytest.raises(UserInputError, match=r"template: residue 'B' at character 8 is not in the alphabet"):
        domain.parse_template("[5]MKVAB[3]", "template")
    assert domain.parse_template("[5]MKVAB[3]", "template", allow_noncanonical=True).segments[1][-1] == 25
    with pytest.raises(UserInputError, match=r"unexpected '\*' at character 5"):
        parse_protein_template("[5]M*[3]")
    with pytest.raises(UserInputError, match=r"malformed spacer at character 4"):
        parse_protein_template("MKV[5-]")
    with pytest.raises(UserInputError, match="no blank to fill"):
        parse_protein_template("MKVLAAG")

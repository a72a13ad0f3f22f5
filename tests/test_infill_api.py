"""The infilling API on a real (random-weight) transformer with real tokenizers: given tokens come back exactly,
blanks are filled with the chosen lengths, for text prompts and protein motif scaffolds, with every strategy."""

import pytest
import torch
from conftest import SONNETS

from discrete_diff.errors import UserInputError
from discrete_diff.inference import TrainedModel
from discrete_diff.infill import UniformLength, infill
from discrete_diff.models.transformer import Transformer, TransformerConfig
from discrete_diff.objectives import Autoregressive, MaskedDiffusion
from discrete_diff.protein.domain import ProteinDomain
from discrete_diff.protein.tokenizer import CANONICAL_AMINO_ACIDS, build_protein_tokenizer
from discrete_diff.sampling import STRATEGIES, FirstHitting, SamplingSettings
from discrete_diff.text.domain import TextDomain
from discrete_diff.text.tokenizers import CharacterTokenizer

MAX_LENGTH = 64


pytestmark = pytest.mark.usefixtures("one_thread")


def random_model(domain) -> TrainedModel:
    torch.manual_seed(0)
    config = TransformerConfig(d_model=32, n_layers=2, n_heads=2, max_length=MAX_LENGTH)
    network = Transformer(config, len(domain.tokenizer))
    return TrainedModel(network=network.eval(), domain=domain, objective=MaskedDiffusion())


@pytest.fixture(scope="module")
def text_model():
    return random_model(TextDomain(CharacterTokenizer().build(lambda: iter([SONNETS]))))


PROMPTS = {
    "both sides": ("Shall I [MASK:6] thee", ["Shall I ", " thee"], [6]),
    "prefix only": ("Rough winds [MASK:9]", ["Rough winds "], [9]),
    "suffix only": ("[MASK:5] of May,", [" of May,"], [5]),
    "several": ("So [MASK:3] as men [MASK:4] breathe", ["So ", " as men ", " breathe"], [3, 4]),
}


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_given_text_comes_back_exactly_with_every_strategy(text_model, strategy):
    prompts = [p for p, _, _ in PROMPTS.values()]
    settings = SamplingSettings(strategy=STRATEGIES[strategy](), steps=8)
    run = infill(text_model, prompts, settings=settings, num=2, batch_size=3, seed=0)
    assert [i.source for i in run.infills] == [p for p in prompts for _ in range(2)]
    for fill in run.infills:
        _, pieces, lengths = next(v for v in PROMPTS.values() if v[0] == fill.source)
        assert [len(f) for f in fill.fills] == lengths
        rebuilt, fills = "", iter(fill.fills)
        for segment in text_model_template(fill.source):
            rebuilt += segment if isinstance(segment, str) else next(fills)
        assert fill.text == rebuilt
        assert all(piece in fill.text for piece in pieces)
        assert "[UNK]" not in fill.text and "[MASK]" not in fill.text
    again = infill(text_model, prompts, settings=settings, num=2, batch_size=3, seed=0)
    assert [i.text for i in again.infills] == [i.text for i in run.infills]


def text_model_template(prompt):
    """The prompt's pieces in order: strings for given text, None for blanks."""
    from discrete_diff.infill import Given, parse_text_template

    return [s.text if isinstance(s, Given) else None for s in parse_text_template(prompt).segments]


def test_a_range_blank_gets_a_length_in_its_range_and_the_scores_are_reported(text_model):
    run = infill(text_model, ["Shall I [MASK:2-6] thee"], settings=SamplingSettings(steps=4))
    choice = run.infills[0].choice
    assert 2 <= choice.lengths[0] <= 6 and len(run.infills[0].fills[0]) == choice.lengths[0]
    assert set(choice.scores) == {(n,) for n in range(2, 7)}
    assert choice.scores[choice.lengths] == min(choice.scores.values())


def test_prompts_that_cannot_be_served_fail_clearly(text_model):
    with pytest.raises(UserInputError, match=rf"prompt 2: 71 tokens .* maximum length {MAX_LENGTH}"):
        infill(text_model, ["ok [MASK:2]", "x" * 60 + " [MASK:10]"])
    with pytest.raises(UserInputError, match=r"prompt: '#' at character 5 is not in the model's vocabulary"):
        infill(text_model, ["Shal# [MASK:3]"])
    with pytest.raises(UserInputError, match="no blank to fill"):
        infill(text_model, ["Shall I compare thee"])
    with pytest.raises(UserInputError, match="min > max"):
        infill(text_model, ["Shall [MASK:9-2]"])
    autoregressive = TrainedModel(text_model.network, text_model.domain, Autoregressive())
    with pytest.raises(UserInputError, match="needs a masked-diffusion model; .* trained with Autoregressive"):
        infill(autoregressive, ["Shall [MASK:2]"])


@pytest.fixture(scope="module")
def protein_model():
    return random_model(ProteinDomain(build_protein_tokenizer()))


def motif_positions(text, spacers, motifs):
    position, found = 0, []
    for spacer, motif in zip(spacers, motifs + [""], strict=True):
        position += spacer
        found.append(text[position : position + len(motif)])
        position += len(motif)
    return found[:-1]


def test_scaffolds_keep_their_motifs_where_the_spacers_put_them(protein_model):
    run = infill(
        protein_model, ["[3-8]MKVL[2-5]WWC[1-4]"], num=12, length_rule=UniformLength(),
        settings=SamplingSettings(strategy=FirstHitting()), seed=0,
    )  # fmt: skip
    assert len(run.infills) == 12
    assert len({i.choice.lengths for i in run.infills}) > 1  # the motifs move
    for fill in run.infills:
        assert motif_positions(fill.text, fill.choice.lengths, ["MKVL", "WWC"]) == ["MKVL", "WWC"]
        assert len(fill.text) == sum(fill.choice.lengths) + 7
        assert set(fill.text) <= set(CANONICAL_AMINO_ACIDS)
        assert fill.tokens[0] == protein_model.tokenizer.cls_token_id
        assert fill.tokens[-1] == protein_model.tokenizer.eos_token_id


def test_fixed_scaffold_lengths_are_chosen_once_by_likelihood(protein_model):
    run = infill(protein_model, ["[2-4]MKVL[3]"], num=3, settings=SamplingSettings(steps=4))
    lengths = {i.choice.lengths for i in run.infills}
    assert len(lengths) == 1 and run.infills[0].choice.scores is not None
    with pytest.raises(UserInputError, match=r"prompt: residue 'J' at character 7"):
        infill(protein_model, ["[2]MKVJ[3]"])


def test_the_trajectory_of_an_infill_is_recorded(text_model):
    run = infill(text_model, ["Shall I [MASK:6] thee"], settings=SamplingSettings(steps=8), record=True)
    fill = run.infills[0]
    states = fill.trajectory.states(fill.row)  # (F, L)
    assert (states[:, fill.given] == 3).all()
    assert (states[0, ~fill.given] == 0).all() and (states[-1, ~fill.given] != 0).all()

"""A text sample that draws [EOS], a training document's end: its text stops there, shows the break as a line of its
own, or the token is never drawn; proteins (whose <eos> is framing) are unaffected."""

import pytest
import torch
from conftest import SONNETS

from discrete_diff.domain import AT_EOS
from discrete_diff.errors import InvalidArgument
from discrete_diff.generation import generate
from discrete_diff.inference import TrainedModel
from discrete_diff.models.transformer import Transformer, TransformerConfig
from discrete_diff.objectives import MaskedDiffusion
from discrete_diff.protein.domain import ProteinDomain
from discrete_diff.protein.tokenizer import build_protein_tokenizer
from discrete_diff.sampling import SamplingSettings
from discrete_diff.text.domain import TextDomain
from discrete_diff.text.tokenizers import CharacterTokenizer

pytestmark = pytest.mark.usefixtures("one_thread")
SETTINGS = SamplingSettings(steps=8)


def random_model(domain) -> TrainedModel:
    """Random weights: every character, [EOS] included, about equally likely."""
    torch.manual_seed(0)
    network = Transformer(TransformerConfig(d_model=32, n_layers=2, n_heads=2, max_length=64), len(domain.tokenizer))
    return TrainedModel(network=network.eval(), domain=domain, objective=MaskedDiffusion())


@pytest.fixture(scope="module")
def text_model():
    return random_model(TextDomain(CharacterTokenizer().build(lambda: iter([SONNETS]))))


def test_stop_and_break_show_the_same_draws_and_ban_never_draws_eos(text_model):
    tokenizer = text_model.tokenizer
    eos, lengths = tokenizer.eos_token_id, [48] * 6
    shown = generate(text_model, lengths, settings=SETTINGS, seed=1, at_eos="break")
    cut = generate(text_model, lengths, settings=SETTINGS, seed=1, at_eos="stop")
    assert shown.ids == cut.ids  # the option changes the text, not the draws
    assert sum(eos in ids for ids in shown.ids) >= 2
    for ids, broken, stopped in zip(shown.ids, shown.records, cut.records, strict=True):
        first = ids.index(eos) if eos in ids else len(ids)
        assert stopped.text == tokenizer.decode(ids[:first]) and "[EOS]" not in stopped.text
        assert broken.text.count("\n[EOS]\n") == ids.count(eos)
        assert broken.text.startswith(stopped.text)
        assert broken.text.replace("\n[EOS]\n", "") == tokenizer.decode(ids, skip_special_tokens=True)
    banned = generate(text_model, lengths, settings=SETTINGS, seed=1, at_eos="ban")
    assert not any(eos in ids for ids in banned.ids)


def test_proteins_are_the_same_whatever_at_eos_says():
    model = random_model(ProteinDomain(build_protein_tokenizer()))
    runs = [generate(model, [20, 30], settings=SETTINGS, seed=2, at_eos=choice) for choice in AT_EOS]
    assert runs[0].records == runs[1].records == runs[2].records


def test_an_unknown_choice_names_the_argument(text_model):
    with pytest.raises(InvalidArgument, match="at_eos must be one of stop, break, ban, got 'skip'"):
        generate(text_model, [8], at_eos="skip")

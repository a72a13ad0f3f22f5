"""Checkpoints written before format versions (interleaved rotary channels, EMA under "ema.module.", no domain)
load as the current format and compute exactly what they computed then."""

import torch
from conftest import SONNETS
from einops import rearrange
from tiny_checkpoints import text_checkpoint

from discrete_diff.checkpoint_format import CHECKPOINT_KEY
from discrete_diff.cli import main
from discrete_diff.denoiser import Bidirectional, DenoiserInput
from discrete_diff.inference import load_model
from discrete_diff.inference.formats import interleaved_to_half_split
from discrete_diff.models.transformer import Rotary, Transformer, TransformerConfig
from discrete_diff.objectives import MaskedDiffusion
from discrete_diff.specs import to_spec
from discrete_diff.text.tokenizers import CharacterTokenizer
from discrete_diff.tokenizer_io import tokenizer_to_dict


class InterleavedRotary(Rotary):
    """The rotary layout of format 1: channel 2j pairs with channel 2j + 1."""

    def forward(self, x, cos, sin):
        half = x.shape[-1] // 2
        cos, sin = cos[..., :half], sin[..., :half]  # (L, D/2): the tables repeat for both halves
        x1, x2 = x[..., 0::2], x[..., 1::2]  # (B, H, L, D/2) each
        rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B, H, L, D/2, 2)
        return rearrange(rotated, "b h l d two -> b h l (d two)")


def format_1_network(config: TransformerConfig, vocab: int) -> Transformer:
    network = Transformer(config, vocab)
    old = InterleavedRotary(config.d_model // config.n_heads, config.max_length, config.rope_base)
    network.rotary = old
    return network


def test_a_format_1_checkpoint_loads_with_identical_logits(tmp_path):
    tokenizer = CharacterTokenizer().build(lambda: iter([SONNETS]))
    config = TransformerConfig(d_model=32, n_layers=2, n_heads=2, max_length=64)
    torch.manual_seed(0)
    old = format_1_network(config, len(tokenizer)).eval()
    meta = {  # what format 1 wrote: no version, no domain, the network's causal flag, the data module's spec
        "tokenizer": tokenizer_to_dict(tokenizer),
        "network": {**vars(config), "causal": False},
        "objective": to_spec(MaskedDiffusion()),
        "optimizer": {"lr": 0.003},
        "ema_decay": 0.99,
        "data": {
            "datamodule": {
                "class_path": "discrete_diff.text.datamodule.TextDataModule",
                "init_args": {"corpus": "x", "block_length": 64},
            }
        },  # fmt: skip
    }
    state = {f"network.{k}": torch.randn_like(v) for k, v in old.state_dict().items()}  # raw weights: not loaded
    state |= {f"ema.module.{k}": v for k, v in old.state_dict().items()}
    path = tmp_path / "format1.ckpt"
    torch.save({CHECKPOINT_KEY: meta, "state_dict": state, "global_step": 7}, path)

    model = load_model(path)
    tokens = torch.randint(0, len(tokenizer), (3, 40), generator=torch.Generator().manual_seed(1))
    inputs = DenoiserInput(tokens, Bidirectional())
    unconverted = Transformer(config, len(tokenizer)).eval()
    unconverted.load_state_dict(old.state_dict())
    with torch.no_grad():
        assert torch.allclose(model.network(inputs), old(inputs), atol=1e-5)
        assert not torch.allclose(unconverted(inputs), old(inputs), atol=1e-3)  # the conversion is needed
    assert model.domain.name == "text" and model.max_length == 64 and model.global_step == 7
    assert model.data["lengths"] == {"length": [64], "count": [1]}


def test_the_conversion_is_a_permutation_that_changes_every_layer_but_nothing_else():
    config = TransformerConfig(d_model=16, n_layers=2, n_heads=2, max_length=8)
    weights = Transformer(config, 11).state_dict()
    converted = interleaved_to_half_split(weights, head_dim=8, layers=2)
    for key, value in weights.items():
        if key.endswith("attn.qkv.weight"):
            assert not torch.equal(converted[key], value)
            assert torch.equal(converted[key][32:], value[32:])  # values are untouched
            assert torch.equal(converted[key].sort(0).values, value.sort(0).values)  # rows permuted, none lost
        else:
            assert converted[key] is value


def test_a_format_2_text_checkpoint_recording_block_length_evaluates_on_its_recorded_data(tmp_path, capsys):
    """Format 2 recorded the text window as the data module's `block_length`; evaluation rebuilds the data module
    from the recorded arguments, which now say `max_length`."""
    checkpoint = torch.load(text_checkpoint(tmp_path), weights_only=True)
    meta = checkpoint[CHECKPOINT_KEY]
    init = meta["data"]["datamodule"]["init_args"]
    init["block_length"] = init.pop("max_length")
    meta["format_version"] = 2
    torch.save(checkpoint, tmp_path / "format2.ckpt")

    model = load_model(tmp_path / "format2.ckpt")
    assert model.data["datamodule"]["init_args"]["max_length"] == 64
    assert "block_length" not in model.data["datamodule"]["init_args"]
    argv = ["eval", "--checkpoint", str(tmp_path / "format2.ckpt"), "--use-recorded-data", "--max-batches", "1"]
    assert main(argv) == 0
    assert "bits" in capsys.readouterr().out

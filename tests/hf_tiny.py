"""Tiny random masked LMs saved as transformers directories: the path a user with a real ESM-2 or BERT takes."""

from __future__ import annotations

from pathlib import Path

import torch
from conftest import SONNETS
from transformers import BertConfig, BertForMaskedLM, BertTokenizer, EsmConfig, EsmForMaskedLM, EsmTokenizer

from discrete_diff.protein.tokenizer import ESM2_VOCABULARY

PROTEINS = [
    "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMKALR",
    "MSHHWGYGKHNGPEHWHKDFPIAKGERQSPVDIDTHTAKYDPSLKPLSVSYDQATSLRILNNGHAFNVEFDDSQDKAVLKGGPLDGTYRL",
    "MGDVEKGKKIFVQKCAQCHTVEKGGKHKTGPNLHGLFGRKTGQAPGFTYTDANKNKGITWKEETLMEYLENPKKYIPGTKMIFAGIKKKTEREDLIAYLKKATNE",
    "MALWMRLLPLLALLALWGPDPAAAFVNQHLCGSHLVEALYLVCGERGFFYTPKTRREAEDLQVGQVELGGGPGAGSLQPLALEGSLQKRGIVEQCCTSICSLYQLENYCN",
]
"""Four public protein sequences (two cut to 100 and 90 residues): enough for a few fine-tuning steps."""


def esm_directory(directory: Path, token_dropout: bool = True) -> Path:
    """A 2-layer, 16-wide ESM-2 (rotary, token dropout on as in the released models) with its own tokenizer."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(ESM2_VOCABULARY) + "\n")
    tokenizer = EsmTokenizer(str(directory / "vocab.txt"))
    config = EsmConfig(
        vocab_size=len(ESM2_VOCABULARY),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=130,
        position_embedding_type="rotary",
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
        token_dropout=token_dropout,
        emb_layer_norm_before=False,
    )
    torch.manual_seed(0)
    EsmForMaskedLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def bert_vocabulary() -> dict[str, int]:
    """Specials, every lower-cased character of the sonnets, and each letter as a word-piece continuation."""
    characters = sorted(set(SONNETS.lower()) - set(" \n"))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *characters, *(f"##{c}" for c in characters)]
    return {token: index for index, token in enumerate(tokens)}


def bert_directory(directory: Path, with_mask: bool = True) -> Path:
    """A 2-layer, 16-wide BERT whose word pieces are single characters (every word of the corpus is covered)."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = bert_vocabulary()
    if not with_mask:
        vocab = {token: index for index, token in enumerate(t for t in vocab if t != "[MASK]")}
    tokenizer = BertTokenizer(vocab=vocab, mask_token="[MASK]" if with_mask else None)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def fasta_file(path: Path) -> Path:
    path.write_text("".join(f">protein_{i}\n{sequence}\n" for i, sequence in enumerate(PROTEINS)))
    return path


def finetune_config(path: Path, run_dir: Path, model_dir: Path, data: str, steps: int) -> Path:
    """A LightningCLI config fine-tuning `model_dir` with the NELBO; `data` is the YAML of the data section."""
    path.write_text(
        f"""
seed_everything: 0
trainer:
  accelerator: cpu
  devices: 1
  precision: 32-true
  max_steps: {steps}
  val_check_interval: {steps}
  limit_val_batches: 1
  check_val_every_n_epoch: null
  log_every_n_steps: 1
  enable_model_summary: false
  enable_progress_bar: false
  logger:
    class_path: lightning.pytorch.loggers.CSVLogger
    init_args: {{save_dir: {run_dir}, name: finetune}}
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {{save_last: true}}
model:
  network: {{path: {model_dir}}}
  optimizer: {{lr: 0.01, warmup_steps: 2}}
  ema_decay: 0.9
data:
{data}
"""
    )
    return path


def fixed_nelbo(network: torch.nn.Module, batch: dict, objective, mask_id: int, draws: int = 16) -> float:
    """NELBO per token of one batch at `draws` stratified times with seeded masks: the same number every call."""
    generator = torch.Generator().manual_seed(0)
    size = batch.size
    network.eval()
    with torch.no_grad():
        losses = [
            objective.loss_at(network, batch, torch.full((size,), (k + 0.5) / draws), mask_id, generator)[0]
            for k in range(draws)
        ]
    return float(torch.stack(losses).mean())

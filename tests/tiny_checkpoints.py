"""Tiny text and protein checkpoints trained with the real Lightning Trainer (10 steps, seconds each), for the tests of
the commands and the web app."""

from __future__ import annotations

from pathlib import Path

from conftest import sonnet_corpus

from discrete_diff.commands.train import build_cli, fit

PROTEINS = ["MKVLAAGWWCEEKLRSTNPQDYHFMKVL", "GWWCAKLLKEEGRSTMKVLPQDNNHY", "ACDEFGHIKLMNPQRSTVWYMKVLWWC"]


def train(
    tmp: Path, data_lines: list[str], steps: int = 10, model: list[str] | None = None, resume: str | None = None
) -> str:
    """The config `tiny` (2 layers x 32, at most 64 positions) with this data section (and these `model` lines),
    resumed from `resume` if given; the last checkpoint."""
    config = tmp / "config.yaml"
    config.write_text("\n".join(["include: tiny", *(["model:", *model] if model else []), "data:", *data_lines]))
    cli = build_cli(
        ["--config", str(config), "--trainer.max_steps", str(steps), "--trainer.logger.init_args.save_dir",
         str(tmp / "runs"), "--trainer.enable_progress_bar", "false", *(["--ckpt_path", resume] if resume else [])]
    )  # fmt: skip
    fit(cli)
    return cli.trainer.checkpoint_callback.last_model_path


def character_text_data(corpus: Path, *extra: str) -> list[str]:
    """YAML lines of the tiny text models' data section: characters of `corpus` in windows of 64; `extra`: more
    init_args lines."""
    return [
        "  class_path: discrete_diff.training.text_data.TextDataModule",
        "  init_args:",
        f"    corpus: {corpus}",
        "    tokenizer: {class_path: discrete_diff.text.tokenizers.CharacterTokenizer}",
        "    max_length: 64",
        "    batch_size: 8",
        *extra,
    ]


def text_checkpoint(tmp: Path) -> str:
    return train(tmp, character_text_data(sonnet_corpus(tmp / "corpus")))


def protein_checkpoint(tmp: Path) -> str:
    """Proteins of 22 to 28 residues; the model's limit is 46 residues (48 positions less <cls> and <eos>)."""
    fasta = tmp / "proteins.fasta"
    fasta.write_text("".join(f">p{i}\n{PROTEINS[i % 3][i % 5 :]}\n" for i in range(30)))
    return train(tmp, [
        "  class_path: discrete_diff.training.protein_data.ProteinDataModule",
        f"  init_args: {{corpus: {fasta}, max_length: 48, batch_size: 8, val_fraction: 0.2}}",
    ])  # fmt: skip


def labelled_text_checkpoint(tmp: Path, objective: list[str] | None = None) -> str:
    """Works in sub-folders `comedy/` and `tragedy/`: a model conditioned on the genre (labels from the folders);
    `objective`: YAML lines of a model.objective to use instead of the default masked diffusion."""
    corpus = tmp / "genres"
    works = sonnet_corpus(tmp / "works")
    for index, genre in enumerate(["comedy", "comedy", "tragedy", "tragedy"]):
        (corpus / genre).mkdir(parents=True, exist_ok=True)
        (works / f"work_{index}.txt").rename(corpus / genre / f"work_{index}.txt")
    return train(tmp, character_text_data(corpus, "    label_folders: true"), model=objective)


def labelled_protein_checkpoint(tmp: Path) -> str:
    """Two labels, one FASTA file each (`labels` mapping); proteins of 22 to 28 residues."""
    paths = {}
    for label, offset in (("alpha", 0), ("beta", 1)):
        paths[label] = tmp / f"{label}.fasta"
        paths[label].write_text("".join(f">{label}{i}\n{PROTEINS[(i + offset) % 3][i % 5 :]}\n" for i in range(15)))
    mapping = ", ".join(f"{label}: {path}" for label, path in paths.items())
    return train(tmp, [
        "  class_path: discrete_diff.training.protein_data.ProteinDataModule",
        f"  init_args: {{labels: {{{mapping}}}, max_length: 48, batch_size: 8, val_fraction: 0.2}}",
    ])  # fmt: skip


UNIFORM = [
    "  objective: {class_path: discrete_diff.objectives.UniformDiffusion}",
    "  network: {time_conditioning: true}",
]
"""YAML lines of a model section that trains uniform-state diffusion (a time-conditioned network)."""


def uniform_text_checkpoint(tmp: Path) -> str:
    """A uniform-state diffusion model of the labelled sonnets (`labelled_text_checkpoint`)."""
    return labelled_text_checkpoint(tmp, UNIFORM)

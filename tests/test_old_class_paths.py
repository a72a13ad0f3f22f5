"""Configs and checkpoints written before the data modules moved to the training layer still load."""

from conftest import sonnet_corpus

from discrete_diff.commands.train import build_cli
from discrete_diff.specs import build
from discrete_diff.training.data import SequenceDataModule
from discrete_diff.training.protein_data import ProteinDataModule
from discrete_diff.training.text_data import TextDataModule

OLD_TEXT = "discrete_diff.text.datamodule.TextDataModule"
OLD_PROTEIN = "discrete_diff.protein.datamodule.ProteinDataModule"


def test_a_config_naming_the_old_text_data_module_trains_the_current_one(tmp_path):
    corpus = sonnet_corpus(tmp_path / "corpus")
    data = [f"  class_path: {OLD_TEXT}", f"  init_args: {{corpus: {corpus}, max_length: 32, batch_size: 4}}"]
    (tmp_path / "old.yaml").write_text("\n".join(["include: tiny", "data:", *data]))
    cli = build_cli(["--config", str(tmp_path / "old.yaml"), "--trainer.logger.init_args.save_dir", str(tmp_path)])
    assert type(cli.datamodule) is TextDataModule
    assert cli.config["data"]["class_path"] == "discrete_diff.training.text_data.TextDataModule"


def test_a_checkpoint_recording_the_old_class_paths_rebuilds_the_current_data_modules(tmp_path):
    text = build({"class_path": OLD_TEXT, "init_args": {"corpus": "x"}}, SequenceDataModule)
    protein = build({"class_path": OLD_PROTEIN, "init_args": {"corpus": "x"}}, SequenceDataModule)
    assert type(text) is TextDataModule and type(protein) is ProteinDataModule

"""A text data module after the Trainer's calls: prepare_data (tokenizing into the cache) and setup (reading it)."""

from discrete_diff.training.text_data import TextDataModule


def ready_text_data(*args, **kwargs) -> TextDataModule:
    data = TextDataModule(*args, **kwargs)
    data.prepare_data()
    data.setup("fit")
    return data

"""Both data modules refuse the options they share with the same one line."""

import pytest

from discrete_diff.errors import UserInputError
from discrete_diff.training.protein_data import ProteinDataModule
from discrete_diff.training.text_data import TextDataModule


@pytest.mark.parametrize("module", [TextDataModule, ProteinDataModule])
@pytest.mark.parametrize(
    ("options", "message"),
    [({"val_fraction": 1.0}, "data.val_fraction must be in (0, 1), got 1.0"),
     ({"batch_size": 0}, "data.batch_size must be positive, got 0")],
)  # fmt: skip
def test_shared_options_are_refused_with_one_line(module, options, message):
    with pytest.raises(UserInputError) as refused:
        module(corpus="unused", **options)
    assert str(refused.value) == message

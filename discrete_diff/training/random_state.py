"""The random state training steps read, kept in checkpoints so a resumed run draws what the uninterrupted one would.

Masking and time draws come from a generator the module owns (`TrainingDraws.generator`); dropout and anything
else from torch's global generators. Each process has its own of each; a checkpoint keeps every process's,
gathered to the one that writes it. A resumed run puts them back just before its first training step, after
everything that set-up and the sanity check may have drawn.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor

STATE_KEY = "discrete_diff_random_state"
"""The checkpoint entry: {name: (processes, state bytes) uint8 tensor}, loadable with weights_only=True."""


class TrainingDraws:
    """The training steps' generator and the saving and restoring of all random state around it."""

    def __init__(self) -> None:
        self.generator: torch.Generator | None = None
        self._pending: dict[str, Tensor] | None = None

    def start(self, module: L.LightningModule) -> None:
        """A generator on the module's device, seeded by the run's seed and the process's rank."""
        seed = hash((torch.initial_seed(), module.global_rank)) & (2**63 - 1)
        self.generator = torch.Generator(device=module.device).manual_seed(seed)

    def save(self, module: L.LightningModule) -> dict[str, Tensor]:
        """Every process's states, gathered (call on every process: it is collective)."""
        states = {"draws": self.generator.get_state(), "torch": torch.get_rng_state()}
        if module.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(module.device)
        world = module.trainer.world_size
        return {name: _gather(module, state).reshape(world, -1).cpu() for name, state in states.items()}

    def load(self, states: dict[str, Tensor]) -> None:
        """Keep the saved states until the first training step (`restore`)."""
        self._pending = states

    def restore(self, module: L.LightningModule) -> None:
        """Put back the saved states, once; a run resumed on another number of processes keeps fresh draws."""
        states, self._pending = self._pending, None
        if states is None or states["draws"].shape[0] != module.trainer.world_size:
            return
        rank = module.global_rank
        self.generator.set_state(states["draws"][rank].clone())
        torch.set_rng_state(states["torch"][rank].clone())
        if "cuda" in states and module.device.type == "cuda":
            torch.cuda.set_rng_state(states["cuda"][rank].clone(), module.device)


def _gather(module: L.LightningModule, state: Tensor) -> Tensor:
    if module.trainer.world_size == 1:
        return state
    return module.all_gather(state.to(module.device))  # (processes, bytes)

"""Training on Lightning: the module (glue), its data-module base, the optimizer schedule and the weight EMA."""

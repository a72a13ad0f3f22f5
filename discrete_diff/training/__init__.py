"""Training on Lightning: the module (glue), the data modules (text, protein) and their base, the optimizer schedule
and the weight EMA."""

"""One module per CLI subcommand: NAME, HELP, configure(parser), run(args) -> exit status."""

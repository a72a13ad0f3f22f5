"""Proteins: the amino-acid tokenizer, FASTA sources, built-in protein sets, generation and metrics."""

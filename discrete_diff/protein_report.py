"""All protein metrics for one set of generated sequences: a dict (JSON), a table and a PNG plot.

It lives beside the inference layer, not in `protein/`, because the likelihood bound reads a `TrainedModel`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from .atomic_files import atomic_save_figure
from .inference import TrainedModel
from .protein.batching import encode_proteins, protein_loader
from .protein.hmm import EVALUE_THRESHOLD, build_hmm, hit_rate
from .protein.identity import mean_pairwise_identity, nearest_identity
from .protein.metrics import (
    composition,
    distribution,
    homopolymer_fraction,
    js_divergence,
    kl_divergence,
    low_complexity_fraction,
    shuffled,
    unigram_perplexity,
)
from .protein.tokenizer import CANONICAL_AMINO_ACIDS


def evaluate_proteins(
    generated: list[str],
    train: list[str],
    held_out: list[str],
    *,
    alignment_rows: dict[str, str] | None = None,
    alignment_source: str | None = None,
    model: TrainedModel | None = None,
    time_draws: int = 4,
    seed: int = 0,
) -> dict[str, Any]:
    """Every protein metric; family membership needs `alignment_rows`, the likelihood bound `model`."""
    reference = composition(held_out)
    result: dict[str, Any] = {
        "counts": {"generated": len(generated), "train": len(train), "held_out": len(held_out)},
        "composition": {
            "js_bits": js_divergence(composition(generated), reference),
            "kl_bits": kl_divergence(composition(generated), reference),
            "js_bits_train_vs_held_out": js_divergence(composition(train), reference),
        },
        "low_complexity_fraction": {
            "generated": low_complexity_fraction(generated),
            "held_out": low_complexity_fraction(held_out),
        },
        "homopolymer_fraction": {
            "generated": homopolymer_fraction(generated),
            "held_out": homopolymer_fraction(held_out),
        },
        "novelty": distribution([nearest_identity(s, train) for s in generated]),
        "held_out_novelty": distribution([nearest_identity(s, train) for s in held_out[: len(generated)]]),
        "diversity": {
            "generated_mean_pairwise_identity": mean_pairwise_identity(generated),
            "held_out_mean_pairwise_identity": mean_pairwise_identity(held_out[: len(generated)]),
        },
    }
    if alignment_rows is not None:
        hmm = build_hmm(alignment_rows)
        result["family_hmm"] = {
            "evalue_threshold": EVALUE_THRESHOLD,
            "alignment_rows": len(alignment_rows),
            "alignment_source": alignment_source,
            "generated": hit_rate(hmm, generated),
            "held_out": hit_rate(hmm, held_out),
            "shuffled_held_out": hit_rate(hmm, shuffled(held_out, seed)),
        }
    if model is not None:
        batches = protein_loader(encode_proteins(model.tokenizer, held_out), model.tokenizer, model.max_length, 32)
        bound = model.objective.likelihood(model.network, batches, model.mask_id, time_draws=time_draws, seed=seed)
        result["likelihood"] = {
            "nelbo_perplexity_per_residue": bound.perplexity,  # the exact perplexity where `exact` (AR models)
            "exact": bound.exact,
            "nats_per_residue": bound.nats_per_token,
            "standard_error_nats": bound.standard_error,
            "bits_per_residue": bound.per_unit("residue", 1.0).bits_per_unit,
            "unigram_perplexity": unigram_perplexity(held_out),
            "residues": bound.tokens,
            "time_draws": time_draws,
        }
    return result


def format_table(result: dict[str, Any]) -> str:
    """A two-column plain-text table of the headline numbers."""
    rows = [
        ("sequences (generated / train / held-out)", "{generated} / {train} / {held_out}".format(**result["counts"])),
        ("composition JS to held-out (bits)", f"{result['composition']['js_bits']:.4f}"),
        ("  train vs held-out, for scale", f"{result['composition']['js_bits_train_vs_held_out']:.4f}"),
        ("composition KL to held-out (bits)", f"{result['composition']['kl_bits']:.4f}"),
        ("low-complexity fraction (gen / held-out)", _pair(result["low_complexity_fraction"])),
        ("homopolymer fraction (gen / held-out)", _pair(result["homopolymer_fraction"])),
        ("novelty: median identity to train", f"{result['novelty']['median']:.3f}"),
        ("  quartiles (q1 / q3)", f"{result['novelty']['q1']:.3f} / {result['novelty']['q3']:.3f}"),
        ("  held-out naturals, median", f"{result['held_out_novelty']['median']:.3f}"),
        ("diversity: mean pairwise identity (gen)", f"{result['diversity']['generated_mean_pairwise_identity']:.3f}"),
        ("  held-out naturals", f"{result['diversity']['held_out_mean_pairwise_identity']:.3f}"),
    ]
    if "family_hmm" in result:
        hmm = result["family_hmm"]
        rows.append(
            (
                f"HMM hit rate, E <= {hmm['evalue_threshold']:g} (gen)",
                f"{hmm['generated']:.3f} (held-out {hmm['held_out']:.3f}, shuffled {hmm['shuffled_held_out']:.3f})",
            )
        )
        rows.append(("  HMM built from", hmm["alignment_source"] or f"{hmm['alignment_rows']} aligned rows"))
    if "likelihood" in result:
        lik = result["likelihood"]
        name, relation = ("NLL", "=") if lik["exact"] else ("NELBO", "<=")
        rows.append(
            (
                f"held-out {name} perplexity / residue",
                f"{relation} {lik['nelbo_perplexity_per_residue']:.3f} (unigram {lik['unigram_perplexity']:.3f})",
            )
        )
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _pair(values: dict[str, float]) -> str:
    return f"{values['generated']:.4f} / {values['held_out']:.4f}"


def plot_comparison(path: str | Path, generated: list[str], natural: list[str]) -> Path:
    """Length histograms and residue compositions, generated vs natural, written atomically as PNG."""
    figure = Figure(figsize=(12, 4))  # no pyplot: no global figure state, no GUI backend
    lengths, residues = figure.subplots(1, 2)
    bins = range(0, max(map(len, generated + natural)) + 10, 5)
    lengths.hist([len(s) for s in natural], bins=bins, alpha=0.6, density=True, label=f"natural (n={len(natural)})")
    lengths.hist(
        [len(s) for s in generated], bins=bins, alpha=0.6, density=True, label=f"generated (n={len(generated)})"
    )
    lengths.set(xlabel="length (residues)", ylabel="density", title="Length")
    lengths.legend()
    x = range(len(CANONICAL_AMINO_ACIDS))
    residues.bar([i - 0.2 for i in x], composition(natural), width=0.4, label="natural")
    residues.bar([i + 0.2 for i in x], composition(generated), width=0.4, label="generated")
    residues.set_xticks(list(x), list(CANONICAL_AMINO_ACIDS))
    residues.set(ylabel="frequency", title="Composition")
    residues.legend()
    figure.tight_layout()
    return atomic_save_figure(figure, path)

"""Protein metrics on sequences whose answers are known."""

import math

import numpy as np
import pytest
from protein_family import make_family

from discrete_diff.protein.alignment import read_alignment
from discrete_diff.protein.hmm import build_hmm, hit_flags
from discrete_diff.protein.identity import cluster_by_identity, identity, mean_pairwise_identity, nearest_identity
from discrete_diff.protein.metrics import (
    composition,
    homopolymer_fraction,
    js_divergence,
    low_complexity_fraction,
    shuffled,
    unigram_perplexity,
)

FAMILY = make_family(60, length=60, mutation_rate=0.15, seed=1)


def test_identity_of_a_sequence_to_itself_is_one():
    assert identity(FAMILY[0], FAMILY[0]) == 1.0
    assert nearest_identity(FAMILY[0], FAMILY[5:] + [FAMILY[0]]) == 1.0


def test_family_members_are_more_identical_than_unrelated_sequences():
    # Two members each keep a position unmutated with p = 0.85, so they agree on at least ~72% of positions.
    member = identity(FAMILY[0], FAMILY[1])
    unrelated = identity(FAMILY[0], shuffled([FAMILY[1]], seed=3)[0])
    assert member > 0.6 > 0.3 > unrelated


def test_shuffled_sequence_has_the_same_composition():
    original, permuted = FAMILY[:5], shuffled(FAMILY[:5], seed=7)
    assert permuted != original
    assert [sorted(s) for s in permuted] == [sorted(s) for s in original]
    assert js_divergence(composition(permuted), composition(original)) == pytest.approx(0.0, abs=1e-12)


def test_composition_distance_is_positive_for_different_sets():
    assert js_divergence(composition(["AAAA"]), composition(["CCCC"])) == pytest.approx(1.0)  # disjoint: 1 bit


def test_diversity_of_identical_sequences_is_one():
    assert mean_pairwise_identity([FAMILY[0]] * 3) == 1.0
    assert mean_pairwise_identity(FAMILY[:4]) < 1.0


def test_low_complexity_and_homopolymers_are_found():
    assert low_complexity_fraction(["QQQQQQQQQQQQQQQQ"]) == 1.0
    assert low_complexity_fraction([FAMILY[0]]) < 0.2
    assert homopolymer_fraction(["MKQQQQQQLV"]) == pytest.approx(0.6)
    assert homopolymer_fraction(["MKQQQQLV"]) == 0.0


def test_unigram_perplexity_of_uniform_residues_is_the_alphabet_size():
    assert unigram_perplexity(["ACDEFGHIKLMNPQRSTVWY" * 3]) == pytest.approx(20.0)
    assert unigram_perplexity(["AAAA"]) == pytest.approx(1.0)


def test_identity_clusters_keep_family_together_and_strangers_apart():
    strangers = make_family(3, length=60, mutation_rate=1.0, seed=9)  # three independent random sequences
    clusters = cluster_by_identity(FAMILY[:10] + strangers, threshold=0.5)
    assert len(set(clusters[:10])) == 1
    assert len(set(clusters)) == 4


def test_hmm_recognises_held_out_members_and_rejects_shuffled_ones(tmp_path):
    train, held_out = FAMILY[:45], FAMILY[45:]
    path = tmp_path / "family.afa"
    path.write_text("".join(f">m{i}\n{s[:30]}\n{s[30:]}\n" for i, s in enumerate(FAMILY)))
    rows = read_alignment(path, keep={f"m{i}" for i in range(45)})
    assert sorted(rows) == sorted(f"m{i}" for i in range(45)) and rows["m0"] == train[0]
    hmm = build_hmm(rows)
    assert all(hit_flags(hmm, held_out))
    assert not any(hit_flags(hmm, shuffled(held_out, seed=2)))


def test_composition_ignores_noncanonical_residues():
    vector = composition(["AXXC"])
    assert math.isclose(vector.sum(), 1.0) and vector[0] == 0.5 and np.count_nonzero(vector) == 2

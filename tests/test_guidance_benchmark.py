"""benchmarks/guidance.py --smoke runs on stand-in data (a `families` folder and a small genre corpus) and writes
every table, and its genre classifier tells apart texts it was not trained on."""

import json
import sys

import pytest
from conftest import REPO, SONNETS
from protein_family import stand_in_families

from discrete_diff.inference import load_model

sys.path.insert(0, str(REPO / "benchmarks"))

import common  # noqa: E402
import guidance  # noqa: E402
import label_prefix  # noqa: E402
from genre_classifier import CharNgramClassifier, chunks, unigram_entropy  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

GENRES = {"comedy": "abcde fgh. ", "history": "klmno pqr, ", "poetry": "stuvw xyz; ", "tragedy": "AEIOU ZY! "}


def stand_in_data(data_dir, tmp_path):
    """A `families` folder (two families with alignments and a background without) the fetch takes as it is, and a
    corpus of two works per genre with its CSV."""
    stand_in_families(data_dir)
    corpus = tmp_path / "works"
    corpus.mkdir()
    rows = ["file,label"]
    for genre, letters in GENRES.items():
        for index in range(2):
            text = "".join(letters[(i * (index + 3)) % len(letters)] for i in range(1500 + 200 * index))
            (corpus / f"{genre}_{index}.txt").write_text(text)
            rows.append(f"{genre}_{index}.txt,{genre}")
    (tmp_path / "genres.csv").write_text("\n".join(rows) + "\n")
    return corpus, tmp_path / "genres.csv"


def test_smoke_run_reports_every_table_and_target(tmp_path, capsys):
    corpus, labels = stand_in_data(tmp_path / "data", tmp_path)
    argv = ["--smoke", "--data-dir", str(tmp_path / "data"), "--text-corpus", str(corpus), "--text-labels",
            str(labels), "--out", str(tmp_path / "out"), "--protein-option",
            "data.init_args.label_balance=1", "--schedule", "late"]  # fmt: skip
    assert guidance.run(argv) == 0
    result = json.loads((tmp_path / "out/guidance.json").read_text())
    assert result["schedule"] == "late"
    assert result["protein options"] == {"data.init_args.label_balance": "1"}
    trained = load_model(result["proteins"]["checkpoint"]).data["datamodule"]["init_args"]
    assert trained["label_balance"] == 1.0  # the lever reached the protein model's training
    rows = result["proteins"]["rows"]
    assert {row["label"] for row in rows} <= {"hemopexin", "adeno_fiber"} and rows  # the background is not scored
    for label in {row["label"] for row in rows}:
        assert [row["w"] for row in rows if row["label"] == label] == list(guidance.SCALES)
    assert all(0 <= row["HMM hit"] <= 1 and 0 <= row["null-label HMM hit"] <= 1 for row in rows)
    assert all(0 <= row["median novelty"] <= 1 and row["composition JS bits"] >= 0 for row in rows)
    assert all(0 <= row["low-complexity gen"] <= 1 and 0 <= row["homopolymer gen"] <= 1 for row in rows)
    for label in {row["label"] for row in rows}:  # one family's naturals: the same values at every w
        naturals = {(r["low-complexity held-out"], r["homopolymer held-out"]) for r in rows if r["label"] == label}
        assert len(naturals) == 1
    text = result["text"]
    assert [row["genre"] for row in text["classifier"]] == sorted(GENRES)
    assert all(row["accuracy"] == 1.0 for row in text["classifier"])  # each genre has letters of its own
    assert {(row["label"], row["w"]) for row in text["rows"]} == {(g, w) for g in GENRES for w in guidance.SCALES}
    assert all(0 <= row["genre accuracy"] <= 1 and row["entropy bits/char"] > 0 for row in text["rows"])
    samples = guidance.SIZES["smoke"]["texts"]
    assert all(0 <= row["loop share"] <= 1 and (row["loop share"] * samples).is_integer() for row in text["rows"])
    assert {(row["model"], row["batch"]) for row in result["cost"]} == {(m, b) for m in ("proteins", "text")
                                                                        for b in (1, 4)}  # fmt: skip
    assert all(row["ratio"] > 0 for row in result["cost"])
    assert [t["target"].split(":")[0] for t in result["targets"]] == ["every family", "every family", "text", "cost"]
    at_zero = {row["label"]: row["HMM hit"] for row in rows if row["w"] == 0.0}  # the target read from the rows
    assert result["targets"][0]["met"] == all(hit >= 0.8 for hit in at_zero.values())
    printed = capsys.readouterr().out
    assert sum(line.startswith("target ") for line in printed.splitlines()) == 4 and "# guidance" in printed
    report = (tmp_path / "out/guidance.md").read_text()
    assert "Proteins: samples per family label" in report and "Text: the genre classifier" in report


def test_the_cost_part_times_both_ways_to_run_the_passes_without_training(tmp_path):
    assert guidance.run(["--smoke", "--parts", "cost", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "guidance.json").read_text())
    assert result["proteins"] is None and result["text"] is None  # nothing trained
    for row in result["cost"]:
        assert row["one call s"] > 0 and row["two calls s"] > 0 and row["unguided s"] > 0
        assert row["faster"] == ("one call" if row["one call s"] <= row["two calls s"] else "two calls")
        assert row["ratio"] == row[f"{row['in code']} ratio"]  # the target is read with the rule in code
        assert row["in code"] == ("two calls" if row["batch"] >= guidance.SPLIT_FROM_ROWS else "one call")
        assert row["late s"] > 0 and row["late ratio"] == row["late s"] / row["unguided s"]
    assert result["split from rows (measured)"] == guidance.split_rule(result["cost"])
    assert "two calls vs one" in (tmp_path / "guidance.md").read_text()


def test_the_split_rule_is_the_smallest_batch_from_which_two_calls_always_won():
    def rows(table: dict[int, list[str]]) -> list[dict]:  # batch -> the faster way, per model
        return [{"batch": batch, "faster": way} for batch, ways in table.items() for way in ways]

    one, two = "one call", "two calls"
    assert guidance.split_rule(rows({1: [one, one], 4: [two, one], 16: [two, two], 64: [two, two]})) == 16
    assert guidance.split_rule(rows({1: [two, two], 64: [two, two]})) == 1
    assert guidance.split_rule(rows({1: [two, two], 64: [one, two]})) is None


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    for argv, message in ((["--parts", "images"], "--parts: unknown"), (["--text-labels", "nope.csv"], "not found"),
                          (["--protein-option", "label_balance"], "expected KEY=VALUE"),
                          (["--scales", "1,2"], "give 0"),
                          (["--scales", "0,x"], "comma-separated numbers"),
                          (["--schedule", "sudden"], "invalid choice: 'sudden'")):  # fmt: skip
        assert guidance.common.main_guard("guidance", guidance.run, [*argv, "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err


def test_the_genre_classifier_recognises_unseen_text_and_entropy_measures_repetition():
    lines = SONNETS.splitlines(keepends=True)
    first, second = "".join(lines[:7]) * 4, "".join(lines[7:]) * 4
    noise = "".join("qzxjkv"[i * 7 % 6] for i in range(len(first)))
    classifier = CharNgramClassifier().fit({"sonnet": [first], "noise": [noise]})
    assert all(classifier.predict(piece) == "sonnet" for piece in chunks(second, 64))
    assert classifier.log_likelihood(second[:64], "sonnet") > classifier.log_likelihood(second[:64], "noise")
    assert unigram_entropy("aaaa") == 0.0 and unigram_entropy("abab") == 1.0
    assert len(chunks("x" * 100, 10, limit=4)) == 4


def test_a_finished_run_is_the_same_run_from_another_checkout_only_if_its_files_match(tmp_path):
    """The genre labels are named by absolute path: a copy in another checkout is the same run, an edited one not."""
    first, second = tmp_path / "a" / "genres.csv", tmp_path / "b" / "genres.csv"
    for path in (first, second):
        path.parent.mkdir()
        path.write_text("file,label\nhamlet.txt,tragedy\n")
    finished = ["--config", "shakespeare_genre", "--data.init_args.label_csv", str(first)]
    assert guidance.same_run(finished, [*finished[:3], str(second)])
    assert not guidance.same_run(finished, [*finished[:3], str(second), "--trainer.max_time", "00:00:01:00"])
    assert not guidance.same_run(finished, ["--config", "families", *finished[2:]])
    second.write_text("file,label\nhamlet.txt,comedy\n")
    assert not guidance.same_run(finished, [*finished[:3], str(second)])


def test_label_prefix_marks_each_record_and_samples_each_family_after_its_marker(tmp_path):
    stand_in_families(tmp_path / "data")
    out = tmp_path / "out"
    assert label_prefix.run(["--smoke", "--data-dir", str(tmp_path / "data"), "--out", str(out)]) == 0
    result = json.loads((out / "label_prefix.json").read_text())
    markers = result["markers"]  # one letter per label, in sorted label order
    assert markers == dict(zip(["adeno_fiber", "hemopexin", "proteome"], label_prefix.MARKERS, strict=False))
    records = [r.splitlines() for r in (out / "data/families_prefixed.faa").read_text().split(">")[1:]]
    assert len(records) == 90  # every record of the stand-in set, its marker in front
    assert all(sequence[0] == markers[header.split("family=")[1]] for header, sequence in records)
    trained = load_model(result["checkpoint"])
    assert trained.data["datamodule"]["init_args"]["corpus"] == str(out / "data/families_prefixed.faa")
    assert {row["label"] for row in result["rows"]} <= {"hemopexin", "adeno_fiber"} and result["rows"]
    assert all(row["marker"] == markers[row["label"]] and 0 <= row["HMM hit"] <= 1 for row in result["rows"])
    data = common.trained_data(trained.data["datamodule"], str(tmp_path / "data"))
    families = label_prefix.scored_families(trained, data, str(tmp_path / "data"), 5)
    assert set(families) == {"hemopexin", "adeno_fiber"}  # the background has no HMM to score against
    for label, family in families.items():
        assert not any(s[0] in label_prefix.MARKERS for s in family.train + family.held_out)  # markers cut off
        samples = label_prefix.prefixed_samples(trained, family, markers[label], steps=2)
        assert [len(s) for s in samples] == family.lengths  # the marker given, then exactly the drawn length
        assert not set("".join(samples)) & set(label_prefix.MARKERS)  # never generated past the first position

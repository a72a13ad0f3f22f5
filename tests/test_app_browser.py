"""`discrete-diff serve` in a real browser: servers of tiny text and protein models trained here, Debian's chromium
driven by Playwright, every page screenshotted under the test's temporary folder.

Without chromium, Playwright or the app extra these tests are skipped, unless DISCRETE_DIFF_REQUIRE_BROWSER is set
(CI sets it): then they fail.
"""

import importlib.util
import io
import os
import shlex
import sys

import pytest
from app_browser import CHROMIUM, SERVER_ENV, chromium, open_tab, press
from Bio import SeqIO
from conftest import REPO
from tiny_checkpoints import labelled_text_checkpoint, protein_checkpoint, text_checkpoint, uniform_text_checkpoint

from discrete_diff.cli import build_parser, main
from discrete_diff.pipeline import DiffusionPipeline
from discrete_diff.protein.tokenizer import CANONICAL_AMINO_ACIDS
from discrete_diff.text.domain import TextDomain

sys.path.insert(0, str(REPO / "benchmarks"))

from serve_load import serving  # noqa: E402  (the load benchmark's way to start a server)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def require(present: bool, what: str) -> None:
    if not present:
        if os.environ.get("DISCRETE_DIFF_REQUIRE_BROWSER"):
            pytest.fail(f"the browser tests need {what}")
        pytest.skip(f"needs {what}")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    require(importlib.util.find_spec("gradio") is not None, "the app extra: pip install -e '.[app]'")
    require(importlib.util.find_spec("playwright") is not None, "playwright: pip install -e '.[dev]'")
    require(CHROMIUM.exists(), "Debian's chromium: apt-get install -y chromium")
    with chromium(tmp_path_factory.mktemp("profile")) as context:
        yield context


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    return text_checkpoint(tmp_path_factory.mktemp("text"))


@pytest.fixture(scope="module")
def text_server(browser, text_model, tmp_path_factory):
    log = tmp_path_factory.mktemp("text_server") / "serve.log"
    with serving(text_model, log, env=SERVER_ENV) as (url, _):
        yield url


@pytest.fixture(scope="module")
def protein_model(tmp_path_factory):
    return protein_checkpoint(tmp_path_factory.mktemp("protein"))


@pytest.fixture(scope="module")
def protein_server(browser, protein_model, tmp_path_factory):
    log = tmp_path_factory.mktemp("protein_server") / "serve.log"
    with serving(protein_model, log, env=SERVER_ENV) as (url, _):
        yield url


def cli_message(capsys, args: list[str]) -> str:
    assert main(args) == 2
    return capsys.readouterr().err.strip().removeprefix("discrete-diff: error: ")


def texts(page, selector: str) -> list[str]:
    return [element.text_content() for element in page.locator(selector).all()]


def finished(page, task: str, count: int) -> list[str]:
    """The samples of a finished run, after checking what every run shows: the live view streamed masked frames
    and ended with none, the trajectory picture is there, no request left the machine."""
    samples = texts(page, f"#{task}-results .dd-sample")
    assert len(samples) == count and not any("[MASK" in sample for sample in samples)
    assert page.evaluate("window.sawMasked") and page.locator(f"#{task}-live .dd-frame").count() == 1
    assert page.locator(f"#{task}-live .dd-masked").count() == 0
    page.locator(f"#{task}-trajectory img").wait_for()
    assert page.outside == []
    return samples


def test_text_infill_keeps_the_prompt_and_fills_every_blank(browser, text_server, text_model, tmp_path):
    page = open_tab(browser, text_server, "Fill blanks")
    prompt = "Shall I [MASK:10] thee to a [MASK:6] day?"
    press(page, "infill", prompt)
    page.screenshot(path=tmp_path / "text-infill.png", full_page=True)
    [sample] = finished(page, "infill", 1)
    assert sample == DiffusionPipeline.from_pretrained(text_model).infill(prompt)[0]  # the CLI's defaults
    assert texts(page, "#infill-results .dd-given") == ["Shall I ", " thee to a ", " day?"]
    assert sample[:8] == "Shall I " and sample[18:29] == " thee to a " and sample[35:] == " day?"
    assert "1 fill, blank lengths (10, 6)," in page.locator("#infill-status").inner_text()


def test_a_bad_prompt_shows_the_cli_message_and_the_server_keeps_serving(
    browser, text_server, text_model, tmp_path, capsys
):
    page = open_tab(browser, text_server, "Fill blanks")
    press(page, "infill", "Shall I [MASK:x] thee")
    page.screenshot(path=tmp_path / "text-error.png", full_page=True)
    expected = cli_message(capsys, ["infill", "--checkpoint", text_model, "--prompt", "Shall I [MASK:x] thee"])
    assert page.locator("#infill-status .dd-error").inner_text() == f"error: {expected}"
    assert page.locator("#infill-results .dd-sample").count() == 0
    press(page, "infill", "So long [MASK:8] men")
    [sample] = finished(page, "infill", 1)
    assert sample.startswith("So long ") and sample.endswith(" men") and len(sample) == len("So long  men") + 8


def shown_command(page, task: str) -> list[str]:
    """The command line under the result, in words; it parses with the CLI's own parser."""
    words = shlex.split(page.locator(f"#{task}-results .dd-command-line").inner_text())
    assert words[0] == "discrete-diff"
    build_parser().parse_args(words[1:])
    return words


def test_text_samples_fields_in_words_and_the_command_line(browser, text_server, text_model, tmp_path):
    page = open_tab(browser, text_server, "Samples")
    field = page.locator("#sample-num")  # named in words; the flag is in its hint
    assert "Number of samples" in field.inner_text() and "--num: number of samples" in field.inner_text()
    assert "Random seed" in page.locator("#sample-seed").inner_text()
    press(page, "sample", num="2", steps="32")
    page.screenshot(path=tmp_path / "text-samples.png", full_page=True)
    samples = finished(page, "sample", 2)
    # The page's length starts at the model's 64; a sample ends early at a drawn [EOS] (the CLI's --at-eos stop).
    assert all(len(sample) <= 64 for sample in samples) and any(samples)
    assert shown_command(page, "sample") == ["discrete-diff", "sample", "--checkpoint", text_model, "--num", "2",
                                             "--steps", "32"]  # fmt: skip


def test_protein_scaffolds_keep_their_motifs_after_an_impossible_template(
    browser, protein_server, protein_model, tmp_path, capsys
):
    page = open_tab(browser, protein_server, "Scaffold motifs")
    press(page, "scaffold", "[30]WWC[30]")
    expected = cli_message(capsys, ["infill", "--checkpoint", protein_model, "--template", "[30]WWC[30]"])
    assert page.locator("#scaffold-status .dd-error").inner_text() == f"error: {expected}"
    press(page, "scaffold", "[2-4]WWC[3-6]KK[1-3]", num="3")
    page.screenshot(path=tmp_path / "protein-scaffold.png", full_page=True)
    samples = finished(page, "scaffold", 3)
    for index in range(3):
        given = texts(page, f'#scaffold-results .dd-sample[data-index="{index}"] .dd-given')
        assert given == ["WWC", "KK"]
        assert samples[index].index("WWC") in (2, 3, 4)
    fasta = page.request.get(page.locator("#scaffold-fasta a").first.get_attribute("href")).text()
    records = list(SeqIO.parse(io.StringIO(fasta), "fasta"))
    assert [str(r.seq) for r in records] == samples and "prompt=[2-4]WWC[3-6]KK[1-3]" in records[0].description


def test_protein_generation_downloads_as_fasta(browser, protein_server, tmp_path):
    page = open_tab(browser, protein_server, "Generate")
    press(page, "generate", length="20", num="4")
    page.screenshot(path=tmp_path / "protein-generate.png", full_page=True)
    samples = finished(page, "generate", 4)
    assert all(len(s) == 20 and set(s) <= set(CANONICAL_AMINO_ACIDS) for s in samples)
    fasta = page.request.get(page.locator("#generate-fasta a").first.get_attribute("href")).text()
    assert [str(r.seq) for r in SeqIO.parse(io.StringIO(fasta), "fasta")] == samples


@pytest.fixture(scope="module")
def genre_model(tmp_path_factory):
    return labelled_text_checkpoint(tmp_path_factory.mktemp("genre"))


@pytest.fixture(scope="module")
def genre_server(browser, genre_model, tmp_path_factory):
    log = tmp_path_factory.mktemp("genre_server") / "serve.log"
    with serving(genre_model, log, env=SERVER_ENV) as (url, _):
        yield url


def test_a_labelled_model_offers_its_labels_and_samples_the_chosen_one_guided(browser, genre_server, genre_model,
                                                                              tmp_path):  # fmt: skip
    page = open_tab(browser, genre_server, "Samples")
    page.locator("#sample-label input").click()
    options = [option.replace("✓", "").strip() for option in texts(page, "[role=option]")]
    assert options == ["(none)", "comedy", "tragedy"]  # "(none)": the unconditional model, the default
    scale = page.locator("#sample-guidance_scale input")  # beside the label, at the command's 0 until one is chosen
    from playwright.sync_api import expect  # here: the module is collected without playwright too

    expect(scale).to_have_value("0")
    page.get_by_role("option", name="tragedy").click()
    # The choice reaches the server with the next event only once the dropdown shows it: wait for that, not a race.
    expect(page.locator("#sample-label input")).to_have_value("tragedy")
    recommended = TextDomain.recommended_guidance_scale
    expect(scale).to_have_value(f"{recommended:g}")  # the domain's recommended scale, filled in by the choice
    press(page, "sample", num="2", length="24", seed="1", steps="16")
    page.screenshot(path=tmp_path / "labelled-samples.png", full_page=True)
    samples = finished(page, "sample", 2)
    pipe = DiffusionPipeline.from_pretrained(genre_model)
    assert samples == pipe.generate(2, 24, seed=1, steps=16, label="tragedy", guidance_scale=recommended)
    words = shown_command(page, "sample")
    assert words[words.index("--label") + 1] == "tragedy"
    assert float(words[words.index("--guidance-scale") + 1]) == recommended


@pytest.fixture(scope="module")
def uniform_model(tmp_path_factory):
    return uniform_text_checkpoint(tmp_path_factory.mktemp("uniform"))


@pytest.fixture(scope="module")
def uniform_server(browser, uniform_model, tmp_path_factory):
    log = tmp_path_factory.mktemp("uniform_server") / "serve.log"
    with serving(uniform_model, log, env=SERVER_ENV) as (url, _):
        yield url


def test_a_uniform_state_model_shows_its_steps_as_changes_not_reveals(browser, uniform_server, uniform_model,
                                                                     tmp_path):  # fmt: skip
    page = open_tab(browser, uniform_server, "Fill blanks")
    prompt = "Shall I [MASK:10] thee"
    press(page, "infill", prompt, steps="16")
    page.screenshot(path=tmp_path / "uniform-infill.png", full_page=True)
    [sample] = texts(page, "#infill-results .dd-sample")
    assert sample == DiffusionPipeline.from_pretrained(uniform_model).infill(prompt, steps=16)[0]
    assert page.evaluate("window.sawChanged") and not page.evaluate("window.sawMasked")
    legend = page.locator("#infill-live .dd-legend").inner_text()
    assert "changed this step" in legend and "masked" not in legend and "revealed" not in legend
    assert texts(page, "#infill-live .dd-given") == ["Shall I ", " thee"]
    page.locator("#infill-trajectory img").wait_for()
    assert page.outside == []

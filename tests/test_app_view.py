"""The app's HTML: states as classes, runs of a state in one span, and every text escaped."""

from discrete_diff.app.backend import Sample
from discrete_diff.app.live import CHANGED, FRESH, GIVEN, MASKED, REVEALED, REVISABLE, Frame
from discrete_diff.app.view import PLACEHOLDER, frame_html, samples_html, status_html


def test_a_frame_shows_each_state_apart_and_masks_as_placeholders():
    frame = Frame(
        3, (("To", GIVEN), (" ", GIVEN), ("[MASK]", MASKED), ("[MASK]", MASKED), ("b", FRESH), ("e", REVEALED))
    )
    page = frame_html(frame)
    assert f'<span class="dd-masked">{PLACEHOLDER * 2}</span>' in page and "[MASK]" not in page
    assert '<span class="dd-given">To </span>' in page and '<span class="dd-fresh">b</span>' in page
    assert '<span class="dd-revealed">e</span>' in page
    assert all(name in page for name in ("masked", "revealed this step", "given"))  # the legend
    assert "changed this step" not in page


def test_a_uniform_state_frame_shows_changes_and_a_legend_without_masks_or_reveals():
    frame = Frame(2, (("To", GIVEN), ("x", REVISABLE), ("b", CHANGED), ("e", REVISABLE)), (REVISABLE, CHANGED, GIVEN))
    page = frame_html(frame)
    assert '<span class="dd-changed">b</span>' in page and '<span class="dd-revisable">x</span>' in page
    assert "changed this step" in page and "may still change" in page and "given" in page  # the legend
    assert "masked" not in page and "revealed" not in page
    assert frame.progress == "1 changed"


def test_prompts_tokens_and_messages_are_escaped():
    sample = Sample((("<script>", True), ("&x", False)), "<script>&x")
    page = samples_html([sample, sample])
    assert "<script>" not in page and "&lt;script&gt;" in page and "&amp;x" in page
    assert page.count('class="dd-seq dd-sample"') == 2 and "2 samples" in page
    error = status_html("prompt: unexpected '<b>' at character 3", error=True)
    assert "dd-error" in error and "&lt;b&gt;" in error and "<b>" not in error

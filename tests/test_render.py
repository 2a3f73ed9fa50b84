"""Model output becomes inert HTML: formatting works, nothing can act."""

from __future__ import annotations

import re

import pytest

from app.core.answering.render import HIGHLIGHT_STYLE, answer_html, highlight_html, query_terms

ALLOWED_TAGS = {
    "p", "br", "b", "i", "code", "pre", "h3", "h4", "h5", "h6", "ul", "ol", "li",
    "blockquote", "hr", "a",
}
TAG = re.compile(r"<(/?)([a-zA-Z0-9]+)([^>]*)>")


def assert_inert(out: str) -> None:
    """Only our own tags; the only attributes are cite hrefs, list starts and styles."""
    for match in TAG.finditer(out):
        closing, name, attrs = match.groups()
        assert name.lower() in ALLOWED_TAGS, match.group(0)
        attrs = attrs.strip()
        if closing or not attrs:
            continue
        if name == "a":
            assert re.fullmatch(r'href="cite:\d+"', attrs), match.group(0)
        elif name == "ol":
            assert re.fullmatch(r'start="\d+"', attrs), match.group(0)
        else:
            assert re.fullmatch(r'style="[^"<>]*"', attrs), match.group(0)
            assert "url(" not in attrs
    lowered = out.lower()
    for bad in ("<img", "<script", "<iframe", "<object", "<embed", "<style", "<link", "<svg"):
        assert bad not in lowered
    # "src=" and "javascript:" may survive only as visible, escaped text, never in a tag.
    for match in TAG.finditer(out):
        assert "src=" not in match.group(0).lower()
        assert "javascript:" not in match.group(0).lower()
    anchors = re.findall(r"<a [^>]*>", out)
    assert all(re.fullmatch(r'<a href="cite:\d+">', a) for a in anchors)


HOSTILE = [
    "<script>alert('x')</script>",
    "<img src=http://evil.example/track.png>",
    '<a href="http://evil.example">click me</a>',
    "[click me](javascript:alert(1))",
    "[x](http://evil)",
    '<iframe src="http://evil.example"></iframe>',
    "![logo](http://evil.example/logo.png)",
    "<http://evil.example/auto>",
    "Visit https://evil.example/bare now",
    '<p onclick="steal()">hi</p>',
    "<svg onload=alert(1)>",
    '<div style="background:url(http://evil)">x</div>',
]


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_output_is_inert(payload: str) -> None:
    for text in (payload, f"Intro [1]\n\n- {payload}\n\n> {payload}\n\n# {payload}", f"**{payload}**"):
        assert_inert(answer_html(text, 3))


def test_html_is_shown_as_text_not_markup() -> None:
    out = answer_html("<script>alert(1)</script> and <b>bold?</b>", 1)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "&lt;b&gt;bold?&lt;/b&gt;" in out


def test_links_become_plain_text_with_their_address() -> None:
    out = answer_html("See [the manual](http://evil.example/m) or <https://a.example/x>.", 2)
    assert "the manual (http://evil.example/m)" in out
    assert "https://a.example/x" in out
    assert "<a " not in out


def test_javascript_link_is_text() -> None:
    out = answer_html("[press](javascript:alert(1))", 1)
    assert "press (javascript:alert(1" in out
    assert "<a " not in out


def test_image_becomes_its_alt_text() -> None:
    out = answer_html("Look: ![a diagram of the pump](http://evil.example/p.png)", 1)
    assert "a diagram of the pump" in out
    assert "evil.example" not in out
    assert "<img" not in out


def test_citations_become_anchors_only_in_range() -> None:
    out = answer_html("Water boils at 100 C [1]. Both agree [1, 2]. Unknown [7]. Zero [0].", 2)
    assert '<a href="cite:1">[1]</a>' in out
    assert out.count('<a href="cite:1">') == 2
    assert '<a href="cite:2">[2]</a>' in out
    assert "[7]" in out and "cite:7" not in out
    assert "[0]" in out and "cite:0" not in out
    assert_inert(out)


def test_citation_list_with_out_of_range_number_keeps_the_valid_one() -> None:
    out = answer_html("Claim [2; 9].", 3)
    assert '<a href="cite:2">[2]</a>' in out
    assert "[9]" in out and "cite:9" not in out



def test_a_follow_ups_numbers_link_to_its_own_sources_only() -> None:
    # A follow-up keeps the numbers its passages had earlier in the conversation: 2, 6, 7.
    out = answer_html("Quoted before [2]. New [6, 7]. Not this turn's [1].", [2, 6, 7])
    assert all(f'<a href="cite:{n}">[{n}]</a>' in out for n in (2, 6, 7))
    assert "[1]" in out and "cite:1" not in out

def test_custom_cite_scheme_and_a_bad_one() -> None:
    assert '<a href="source:1">[1]</a>' in answer_html("x [1]", 1, cite_scheme="source")
    with pytest.raises(ValueError):
        answer_html("x [1]", 1, cite_scheme='x" onclick="y')


def test_no_citations_inside_code() -> None:
    out = answer_html("Use `arr[1]` here.\n\n```\nitems[1] = 2 [1]\n```\n\nReal [1].", 3)
    assert "<code>arr[1]</code>" in out
    assert "<pre" in out and "items[1] = 2 [1]</pre>" in out
    assert out.count("<a ") == 1


def test_code_block_content_is_escaped_and_unformatted() -> None:
    out = answer_html("```python\n<b>**not bold**</b>\n  indented\n```", 1)
    assert "&lt;b&gt;**not bold**&lt;/b&gt;\n  indented</pre>" in out
    assert "<b>" not in out


def test_inline_formatting() -> None:
    out = answer_html("This is **bold**, *italic*, _also italic_ and `x < y`.", 0)
    assert out == (
        "<p>This is <b>bold</b>, <i>italic</i>, <i>also italic</i> and <code>x &lt; y</code>.</p>"
    )


def test_underscores_inside_words_and_lone_stars_stay() -> None:
    out = answer_html("snake_case_name and 2 * 3 * 4", 0)
    assert "snake_case_name" in out and "2 * 3 * 4" in out
    assert "<i>" not in out


def test_paragraphs_and_line_breaks() -> None:
    out = answer_html("First line\nsecond line\n\nNew paragraph", 0)
    assert out == "<p>First line<br>second line</p><p>New paragraph</p>"


def test_headings_are_small() -> None:
    out = answer_html("# Big\n## Less\n### Small\n###### Tiny\n#hashtag", 0)
    assert "<h3>Big</h3>" in out and "<h4>Less</h4>" in out
    assert "<h5>Small</h5>" in out and "<h6>Tiny</h6>" in out
    assert "<h1" not in out and "<h2" not in out
    assert "<p>#hashtag</p>" in out


def test_lists() -> None:
    out = answer_html("Steps:\n\n1. Open [1]\n2. Close\n\n- apples\n- pears\n  - nested\n* plums", 2)
    assert '<ol><li>Open <a href="cite:1">[1]</a></li><li>Close</li></ol>' in out
    assert "<ul><li>apples</li><li>pears</li><li>nested</li><li>plums</li></ul>" in out


def test_numbered_list_keeps_its_start_and_a_loose_list_stays_one() -> None:
    out = answer_html("3. third\n\n4. fourth", 0)
    assert out == '<ol start="3"><li>third</li><li>fourth</li></ol>'


def test_list_item_continuation_line() -> None:
    out = answer_html("- first item\n  goes on\n- second", 0)
    assert out == "<ul><li>first item<br>goes on</li><li>second</li></ul>"


def test_blockquote_and_rule() -> None:
    out = answer_html("> quoted **text**\n> more\n\n---\n\nafter", 0)
    assert out == "<blockquote><p>quoted <b>text</b><br>more</p></blockquote><hr><p>after</p>"


def test_unclosed_fence_runs_to_the_end() -> None:
    out = answer_html("Before\n```\ncode <x>", 0)
    assert out == '<p>Before</p><pre style="font-family:monospace;">code &lt;x&gt;</pre>'


def test_empty_and_nul() -> None:
    assert answer_html("", 0) == ""
    assert "\x00" not in answer_html("a\x00b [1]\x001\x00", 1)


def test_highlight_marks_terms_case_insensitively_as_words() -> None:
    out = highlight_html("The Pump and the pumps; pumpkin pie.", ["pump"])
    mark = f'<b style="{HIGHLIGHT_STYLE}">'
    assert f"{mark}Pump</b>" in out
    assert f"{mark}pumps</b>" in out
    assert "pumpkin" in out and f"{mark}pumpkin" not in out


def test_highlight_escapes_and_ignores_short_terms() -> None:
    out = highlight_html("a <b>tag</b> & amp\nnext", ["a", "amp", "tag"])
    assert "&lt;" in out and "&amp;" in out
    assert "<b>tag</b>" not in out  # the document's markup stays text
    assert out.count("<b ") == 2  # "tag" and the word "amp", not "&amp;", not "a"
    assert "<br>next" in out


def test_highlight_no_space_script_matches_inside_text() -> None:
    out = highlight_html("这是中文测试", ["中文"])
    assert f'<b style="{HIGHLIGHT_STYLE}">中文</b>' in out


def test_highlight_without_terms_is_escaped_text() -> None:
    assert highlight_html("x < y", []) == "x &lt; y"


def test_query_terms_are_content_words() -> None:
    assert query_terms("What is the boiling point of water?") == ["boiling", "point", "water"]
    assert query_terms("a b c") == []


def test_a_reference_definition_stays_visible_and_its_marker_a_citation() -> None:
    out = answer_html("As noted [1].\n\n[1]: http://evil.example/ref", 1)
    assert '<a href="cite:1">[1]</a>' in out
    assert "http://evil.example/ref" in out  # shown as text, as the model wrote it
    assert_inert(out)

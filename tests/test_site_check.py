"""The website's static checks (tools/site_check.py): each failure planted in a few lines of HTML, and a clean case.

No mkdocs, no browser: ``make site-check`` runs the same functions over build/site, and the browser checks.
"""

from tools import site_check

PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
TOC = '<nav class="md-nav md-nav--secondary"><ul><li><a href="#{id}" class="md-nav__link">{text}</a></li></ul></nav>'
OUTPUT = '<div class="jp-OutputArea-output"><pre>{text}</pre></div>'


def page(body: str) -> str:
    return f"<!doctype html><html><head><title>t</title></head><body>{body}</body></html>"


def test_raw_math_in_text_fails():
    html = page("<p>The Dice loss is $1 - \\frac{2|A \\cap B|}{|A| + |B|}$ and \\(x^2\\) is squared.</p>")
    assert site_check.raw_math(html) == ["$1 - \\frac{2|A \\cap B|}{|A| + |B|}$", "\\(x^2\\)"]


def test_raw_display_math_fails():
    display = page("<p>$$\nL = -\\sum_i y_i \\log p_i\n$$</p>")
    assert site_check.raw_math(display) == ["$$ L = -\\sum_i y_i \\log p_i $$"]
    assert site_check.raw_math(page("<div>\\[ a + b \\]</div>")) == ["\\[ a + b \\]"]


def test_typeset_math_code_and_prices_pass():
    html = page(
        '<p>The loss <mjx-container class="MathJax"><mjx-math>x</mjx-math><mjx-assistive-mml>$x$'
        "</mjx-assistive-mml></mjx-container> costs $5 or $10.</p>"
        "<pre><code>cost = f'$x$'</code></pre><p>Run <code>echo $HOME$</code>.</p><script>var a = '$b$';</script>"
    )
    assert site_check.raw_math(html) == []


def test_anchor_that_matches_no_id_fails():
    pages = {
        "index.html": page('<a href="notebooks/02.html#Cross-entropy">ok</a> <a href="notebooks/02.html#_1">x</a>'),
        "notebooks/02.html": page('<h2 id="Cross-entropy">Cross-entropy</h2><a href="#nowhere">up</a>'),
    }
    problems = site_check.broken_links(pages, set(pages))
    assert problems == [
        "index.html: link to notebooks/02.html#_1: no element with id '_1'",
        "notebooks/02.html: link to #nowhere: no element with id 'nowhere'",
    ]


def test_link_to_a_missing_file_fails_and_good_links_pass():
    pages = {
        "index.html": page(
            '<a href="notebooks/">dir</a><a href="developers.html#top">dev</a><a href=".">here</a><a name="top"></a>'
            '<a href="https://example.org/#x">other site</a><a href="assets/a.css">css</a><a href="missing.html">x</a>'
        ),
        "notebooks/index.html": page('<a href="..">home</a><a href="../../out.html">up</a>'),
        "developers.html": page('<p id="top">dev</p>'),
        # mkdocs' 404 page links from the site's root on its server: /course/ here
        "404.html": page('<a href="/course/developers.html#top">dev</a><a href="/elsewhere/index.html">x</a>'),
    }
    problems = site_check.broken_links(pages, set(pages) | {"assets/a.css"}, base="/course/")
    assert problems == [
        "index.html: link to missing.html names no file of the site",
        "notebooks/index.html: link to ../../out.html names no file of the site",
        "404.html: link to /elsewhere/index.html names no file of the site",
    ]


def test_empty_toc_entry_fails():
    html = page(TOC.format(id="_1", text="<span class='md-ellipsis'> </span>") + TOC.format(id="loss", text="Loss"))
    assert site_check.empty_toc_entries(html) == ["#_1"]
    assert site_check.empty_toc_entries(page(TOC.format(id="a", text="<span><code>ignore_index</code></span>"))) == []


def test_absolute_local_path_in_an_output_fails():
    html = page(
        OUTPUT.format(text="checkpoints: /tmp/tmpab12cd/best.pt: saved in /tmp.")
        + OUTPUT.format(text="NOTICE: the real data is not in /home/runner/.cache/unet_tutorial/carvana")
        + OUTPUT.format(text="saved to /srv/build/unet-tutorial/runs/03")
        + "<p>On Colab the data lives in /content/data; here it was /home/me/data (prose, not an output).</p>"
    )
    assert site_check.local_paths(html, roots=("/srv/build/unet-tutorial",)) == [
        "/home/runner/.cache/unet_tutorial/carvana",
        "/srv/build/unet-tutorial",
        "/tmp",
        "/tmp/tmpab12cd/best.pt",
    ]
    shortened = page(OUTPUT.format(text="saved to ./runs/03 and ~/.cache, $TMPDIR/tmpab12cd/x"))
    assert site_check.local_paths(shortened, roots=("/tmp", "/srv/build/unet-tutorial")) == []


def test_missing_image_fails():
    html = page(
        f'<img src="data:image/png;base64,{PIXEL}"><img src="figures/a.png"><img src="figures/gone.png">'
        '<img src=""><img src="data:image/png;base64,"><img src="data:image/png;base64,%%%">'
        '<img src="https://colab.research.google.com/assets/colab-badge.svg">'
    )
    assert site_check.missing_images(html, "notebooks/01.html", {"notebooks/figures/a.png"}) == [
        "figures/gone.png (no such file in the site)",
        "an image without a source",
        "data:image/png;base64,... (an empty or undecodable data URI)",
        "data:image/png;base64,%%%... (an empty or undecodable data URI)",
    ]


def test_check_files_over_a_planted_site(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "index.html").write_text(page(TOC.format(id="x", text="") + '<a href="notebooks/01.html">01</a>'))
    (tmp_path / "notebooks" / "01.html").write_text(
        page('<h1 id="x">01</h1><img src="f.png">' + OUTPUT.format(text="/root/unet/runs"))
    )
    problems, counts = site_check.check_files(tmp_path)
    assert problems == [
        "index.html: link to #x: no element with id 'x'",
        "index.html: table-of-contents entry without text (to #x)",
        "notebooks/01.html: a local path in an output: /root/unet/runs",
        "notebooks/01.html: missing image: f.png (no such file in the site)",
    ]
    assert counts == {"pages": 2, "links": 2, "anchors": 1, "toc entries": 1}

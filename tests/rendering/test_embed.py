"""The inline SVG shared by the Sphinx directive and the MkDocs plugin: options, and the check that
nothing active reaches the page."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import require_graphviz

from statemachine import builtin_spec
from statemachine.rendering.embed import EmbedError, check_edges, check_svg, diagram_html, diagram_svg, printable


@pytest.fixture(scope="module", autouse=True)
def graphviz_available() -> None:
    require_graphviz()


def test_the_drawn_svg_passes_the_check_and_names_every_status() -> None:
    svg = diagram_svg()
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "<!--" not in svg and "<?xml" not in svg
    assert all(f">{name}<" in svg for name in builtin_spec().status_names)
    assert diagram_html().startswith('<div class="session-lifecycle" data-edges="all"')


@pytest.mark.parametrize("bad", [
    '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><g/></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
    '<a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><div>x</div></foreignObject></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><g style="background:url(http://example.invalid/x)"/></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><path fill="url(http://example.invalid/x)"/></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><g>',
])
def test_active_or_broken_svg_is_refused(bad: str) -> None:
    with pytest.raises(EmbedError) as caught:
        check_svg(bad)
    assert caught.value.option == "spec"


def test_plain_svg_passes_with_prolog_and_comments_removed() -> None:
    svg = '<?xml version="1.0"?>\n<!-- x --><svg xmlns="http://www.w3.org/2000/svg"><!-- y --><text>a</text></svg>'
    assert check_svg(svg) == '<svg xmlns="http://www.w3.org/2000/svg"><text>a</text></svg>'


def test_options_are_checked_and_named(tmp_path: Path) -> None:
    assert check_edges(None) == "all" and check_edges(" command ") == "command"
    with pytest.raises(EmbedError, match=r"^edges: 'commands' is not one of all, provider, command"):
        check_edges("commands")
    with pytest.raises(EmbedError, match=r"^spec: .*missing\.yaml"):
        diagram_svg(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(EmbedError) as caught:
        diagram_svg(tmp_path / "bad.yaml")
    assert caught.value.option == "spec" and "bad.yaml" in caught.value.message


def test_printable_spells_out_control_characters() -> None:
    assert printable("a\x1b[31mb\n") == "a\\x1b[31mb\\n"
    assert printable("x" * 10, limit=4) == "xxxx..."

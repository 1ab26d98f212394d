"""Text extraction and chunking of uploaded files."""

import json

import pytest

from deployments.services.text_chunks import UnsupportedFile, chunk_words, extract_text
from tests.pdf import text_pdf


def test_pdf_text_comes_from_every_page_in_order():
    pdf = text_pdf([["The tide turns at noon.", "Boats wait (briefly) at the pier."], ["Page two speaks of gulls."]])
    text = extract_text("tides.pdf", pdf)
    assert text.index("tide turns") < text.index("(briefly)") < text.index("gulls")


def test_a_pdf_is_recognised_by_its_header_whatever_its_name():
    assert "gulls" in extract_text("upload.bin", text_pdf([["gulls"]]))


@pytest.mark.parametrize("data, reason", [
    (b"%PDF-1.7 binary", "not a readable PDF"),
    (text_pdf([["cut short"]])[:150], "not a readable PDF"),
    (text_pdf([[]]), "no text layer"),
])
def test_unreadable_pdfs_are_unsupported_with_the_reason(data, reason):
    with pytest.raises(UnsupportedFile) as failure:
        extract_text("scan.pdf", data)
    assert reason in failure.value.message and "scan.pdf" in failure.value.message


def test_html_keeps_visible_text_only():
    html = b"<html><head><title>t</title><style>p{}</style></head><body><p>Shown</p><script>hidden()</script></body></html>"
    assert extract_text("page.html", html) == "Shown"


def test_json_keeps_field_names_searchable():
    text = extract_text("data.json", json.dumps({"keeper": {"name": "Ada", "shifts": [1, 2]}}).encode())
    assert text.split("\n") == ["name: Ada", "shifts: 1", "shifts: 2"]


def test_binary_that_is_not_text_is_unsupported():
    with pytest.raises(UnsupportedFile):
        extract_text("blob.txt", bytes(range(128, 256)))


def test_chunks_overlap_and_cover_every_word():
    words = [f"w{n}" for n in range(10)]
    chunks = chunk_words(" ".join(words), max_words=4, overlap_words=1)
    assert chunks == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
    assert chunk_words("", 4, 1) == []

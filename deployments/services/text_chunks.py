"""Text out of a file, and the file's text cut into overlapping chunks.

Chunk sizes count words (whitespace-separated), a stand-in for tokens that needs no tokenizer;
English text runs ~1.3 model tokens a word.
"""

from __future__ import annotations

import io
import json
import logging
from html.parser import HTMLParser
from pathlib import PurePath

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from providers.api.errors import InvalidRequestError

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".csv", ".log", ".py", ".yaml", ".yml"}


class UnsupportedFile(InvalidRequestError):
    """A file whose text cannot be read; its ingestion fails with code `unsupported_file`."""


def extract_text(filename: str, data: bytes) -> str:
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".pdf" or data.startswith(b"%PDF"):
        return _pdf_text(filename, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnsupportedFile(f"'{filename}' is not UTF-8 text") from None
    if suffix in (".html", ".htm") or text.lstrip()[:15].lower().startswith(("<!doctype html", "<html")):
        return _html_text(text)
    if suffix == ".json":
        try:
            return "\n".join(_json_strings(json.loads(text)))
        except json.JSONDecodeError as exc:
            raise UnsupportedFile(f"'{filename}' is not valid JSON: {exc}") from None
    return text


def _pdf_text(filename: str, data: bytes) -> str:
    """The text layer of every page; a PDF without one (a scan) has nothing to index."""
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns on every malformed object
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnsupportedFile(f"'{filename}' is an encrypted PDF")
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise UnsupportedFile(f"'{filename}' is not a readable PDF: {exc}") from None
    if not text.strip():
        raise UnsupportedFile(f"'{filename}' has no text layer (a scanned PDF needs OCR first)")
    return text


class _TextOnly(HTMLParser):
    _SKIPPED = {"script", "style", "head", "noscript"}

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        self._skipping += tag in self._SKIPPED

    def handle_endtag(self, tag):
        self._skipping -= tag in self._SKIPPED and self._skipping > 0

    def handle_data(self, data):
        if not self._skipping and data.strip():
            self.parts.append(data.strip())


def _html_text(html: str) -> str:
    parser = _TextOnly()
    parser.feed(html)
    return "\n".join(parser.parts)


def _json_strings(value, key: str = "") -> list[str]:
    """Each scalar as `key: value`, so field names stay searchable."""
    if isinstance(value, dict):
        return [line for k, v in value.items() for line in _json_strings(v, k)]
    if isinstance(value, list):
        return [line for v in value for line in _json_strings(v, key)]
    return [f"{key}: {value}" if key else str(value)]


def chunk_words(text: str, max_words: int, overlap_words: int) -> list[str]:
    """Windows of `max_words` words, each starting `max_words - overlap_words` after the last."""
    if not 0 <= overlap_words < max_words:
        raise ValueError("overlap must be smaller than the chunk")
    words = text.split()
    step = max_words - overlap_words
    chunks = []
    for start in range(0, len(words), step):
        chunks.append(" ".join(words[start:start + max_words]))
        if start + max_words >= len(words):
            break
    return chunks

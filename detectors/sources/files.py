"""Streams rows from exported Log Analytics files: JSON array, NDJSON or portal CSV, maybe gzipped.

Everything is read in chunks of `CHUNK_BYTES`, so memory stays bounded by the chunk size plus
`max_row_bytes` whatever the size of the file. Bad rows become `RejectedRow`s and reading goes
on; only a file that cannot be read at all raises `InputError`.
"""

from __future__ import annotations

import csv
import enum
import functools
import itertools
import json
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Protocol, TypeAlias

import orjson

from detectors.model.errors import InputError
from detectors.model.observation import RawRow, RejectedRow, SourceTable
from detectors.normalize.rows import Skipped
from detectors.normalize.schemas import log_analytics_columns, table_of
from detectors.sources.portal_dates import DateOrder, PortalDates

Row: TypeAlias = RawRow | RejectedRow | Skipped
"""What a reader yields: a row, a rejected row, or with `skip` a row it recognised as one the
normaliser skips, without making it a `RawRow`."""
EarlySkip: TypeAlias = Callable[[SourceTable | None, Mapping[str, Any]], Skipped | None]
"""Says, from a decoded Log Analytics row, whether the normaliser would skip it
(`normalize.rows.early_skip`)."""

CHUNK_BYTES: Final = 1 << 20
"""How much decompressed content is handed to a parser at a time."""

_COMPRESSED_PIECE: Final = 256 * 1024
_MAX_LEADING_BLANK: Final = 64 * CHUNK_BYTES
_GZIP_MAGIC: Final = b"\x1f\x8b"
_UTF8_BOM: Final = b"\xef\xbb\xbf"
_UTF16_BOMS: Final = (b"\xff\xfe", b"\xfe\xff")

_LBRACE, _RBRACE, _LBRACKET, _RBRACKET, _QUOTE, _NEWLINE = b'{}[]"\n'
_CLOSER_OF: Final = {_LBRACE: _RBRACE, _LBRACKET: _RBRACKET}

# JSON whitespace; between array elements stray commas are tolerated as well.
_JSON_BLANK = re.compile(rb"[ \t\r\n]*+")
_ARRAY_GAP = re.compile(rb"[ \t\r\n,]*+")
_INDENT = re.compile(rb"[ \t]*+")
# Skips everything up to the next brace or bracket that is not inside a string, in C. A string
# may not span lines (a raw newline is invalid in JSON), which confines a missing quote to its
# line. The match stops on the opening quote of a string that is not closed in the buffer.
# Written as an unrolled loop (one iteration per string or escape), which `re` runs faster.
_TO_STRUCTURE = re.compile(rb'[^"{}\[\]]*+(?:"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"[^"{}\[\]]*+)*+')
_LINE_END_PADDING: Final = b" \t\r,"
_BLANK_OR_NEWLINE: Final = b"\r\n"
_SCALAR = re.compile(rb'"(?:[^"\\\n]++|\\.)*+"|[^ \t\r\n,\[\]{}"]++')

# A CSV line that ends outside quotes, with the csv module's reading of quotes: a quote opens a
# quoted value only at the start of a field, `""` inside one is a literal quote, and anything
# after the closing quote up to the next comma belongs to the same field.
_CSV_FIELD: Final = rb'(?:"(?:[^"]++|"")*+"[^,\n]*+|[^",\n][^,\n]*+|)'
_CSV_RECORD_LINE = re.compile(_CSV_FIELD + rb"(?:," + _CSV_FIELD + rb")*+\n?")
# The same for a line that starts inside a quoted value carried over from the line before.
_CSV_CLOSING_LINE = re.compile(rb'(?:[^"]++|"")*+"[^,\n]*+(?:,' + _CSV_FIELD + rb")*+\n?")
_CSV_FIELD_END = re.compile(rb"[,\n]")
_CSV_BLANK_LINES: Final = (b"\n", b"\r\n", b"\r")
_COLUMN_SUFFIX = re.compile(r" +\[[^\[\]]*\]\Z")
_CONTROL_BYTES = bytes([*range(9), 11, 12, *range(14, 32), 127])
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# The start and the end of an object that wraps the records in an array: `{"records": [`
# (Event Hubs, older archive blobs) or `{"value": [` (REST list responses, `az rest`), maybe
# after other scalar fields, and `, "nextLink": "..."}` after the array.
_JSON_SCALAR = rb'(?:"(?:[^"\\\n]|\\.)*+"|null|true|false|-?[0-9][0-9.eE+-]*+)'
_MEMBER = rb'[ \t\r\n]*+"[^"\\\n]*+"[ \t\r\n]*+:[ \t\r\n]*+' + _JSON_SCALAR + rb"[ \t\r\n]*+"
_ENVELOPE_HEAD = re.compile(
    rb"\{(?:" + _MEMBER + rb',)*+[ \t\r\n]*+"(?:records|value)"[ \t\r\n]*+:[ \t\r\n]*+\['
)
_ENVELOPE_TAIL = re.compile(rb"(?:," + _MEMBER + rb")*+\}")
_ENVELOPE_LOOKAHEAD: Final = 64 * 1024
"""How far the start or end of a wrapping object may run: its other fields are short."""
ENVELOPE_KEYS: Final = frozenset({"records", "value"})
_MORE_RECORDS: Final = b",{"
_ENVELOPE_EXTRAS: Final = frozenset({"nextLink", "@odata.nextLink", "@odata.context", "count"})

# States of the CSV quote tracker used while discarding an over-limit record.
_FIELD_START, _UNQUOTED, _IN_QUOTES, _QUOTE_SEEN = range(4)

# States of the JSON array reader.
_OUTSIDE, _ARRAY, _ELEMENT, _OVERSIZE, _RESYNC = range(5)
_MORE, _DONE, _BROKEN, _UNCLOSED, _DEEP = range(5)
MAX_NESTING = 512
"""Deepest nesting of brackets followed in an element (orjson reads 1,024): what the
reader keeps per level is bounded, however many brackets a damaged or hostile file holds."""


class Layout(enum.Enum):
    """How an export's content is laid out (`ContentReader.layout`)."""

    ARRAY = "a JSON array"
    ENVELOPE = "records wrapped in an object"
    PRETTY = "objects over several lines each"
    NDJSON = "one JSON object per line"
    GZIP_NDJSON = "one JSON object per line, gzip-compressed"
    CSV = "CSV"


class FileSource:
    """Streams rows from one exported file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_row_bytes: int = 1_048_576,
        date_order: DateOrder | None = None,
        skip: EarlySkip | None = None,
    ) -> None:
        """Prepares to read `path`; nothing is opened until iteration starts. `date_order`
        says how a CSV export's locale wrote its dates, if the export cannot tell. With
        `skip`, JSON rows it recognises are yielded as its `Skipped` instead of as rows."""
        if max_row_bytes < 1:
            raise ValueError(f"max_row_bytes must be positive, not {max_row_bytes}")
        self._path = os.fspath(path)
        self._date_order = date_order
        self._max_row_bytes = max_row_bytes
        self._skip = skip
        self._disk: ContentReader | None = None
        self._size: int | None = None
        self._part_read = 0
        """Bytes of the part being read (`read_part`) read so far."""

    @property
    def bytes_read(self) -> int:
        """Bytes consumed from the file on disk so far (compressed bytes if gzip), for progress."""
        return self._disk.count if self._disk is not None else self._part_read

    @property
    def total_bytes(self) -> int:
        """Size of the file on disk when it was first looked at (a file deleted after it was
        read is not an error)."""
        if self._size is None:
            try:
                found = os.stat(self._path)
            except OSError as err:
                raise InputError(f"{self._path}: cannot read the file: {err.strerror}") from err
            if stat.S_ISDIR(found.st_mode):
                raise InputError(f"{self._path}: is a directory, not an exported file")
            if not stat.S_ISREG(found.st_mode):
                raise InputError(f"{self._path}: is not a regular file (a pipe or a device?)")
            self._size = found.st_size
        return self._size

    def __iter__(self) -> Iterator[Row]:
        """Yields every row of the file in order, rejected ones included."""
        size = self.total_bytes
        try:
            handle = open(self._path, "rb")  # noqa: SIM115 - closed by the `with` just below
        except OSError as err:
            raise InputError(f"{self._path}: cannot open the file: {err.strerror}") from err
        with handle:
            content = ContentReader(
                self._path,
                handle,
                size,
                max_row_bytes=self._max_row_bytes,
                date_order=self._date_order,
                what="file",
                skip=self._skip,
            )
            self._disk = content
            yield from content
            if content.count < size:
                raise InputError(
                    f"{self._path}: the file shrank while it was read ({content.count:,} of its "
                    f"{size:,} bytes were there); read it again once it is complete"
                )

    def parts(self, count: int) -> list[tuple[int, int]] | None:
        """Byte ranges [start, end) that cut the file into `count` parts at line ends, each
        to be read on its own (`read_part`); None unless it is uncompressed NDJSON (any other
        layout is read from its start) long enough for each part to hold a line end."""
        size = self.total_bytes
        try:
            with open(self._path, "rb") as handle:
                layout, _ = ContentReader(self._path, handle, size).layout()
                if layout is not Layout.NDJSON:
                    return None
                cuts = [0]
                for n in range(1, count):
                    handle.seek(max(size * n // count, cuts[-1]))
                    # The next line starts after the next line end.
                    while True:
                        data = handle.read(CHUNK_BYTES)
                        end = data.find(b"\n")
                        if end >= 0:
                            cuts.append(handle.tell() - len(data) + end + 1)
                            break
                        if not data:
                            return None
                cuts.append(size)
        except OSError as err:
            raise InputError(f"{self._path}: cannot read the file: {err.strerror}") from err
        ranges = list(itertools.pairwise(cuts))
        return ranges if all(start < end for start, end in ranges) else None

    def read_part(self, start: int, end: int) -> Iterator[Row]:
        """The rows of bytes [start, end) of an NDJSON file (a range `parts` gave), numbered
        by their lines in the whole file."""
        try:
            handle = open(self._path, "rb")  # noqa: SIM115 - closed by the `with` just below
        except OSError as err:
            raise InputError(f"{self._path}: cannot open the file: {err.strerror}") from err
        with handle:
            lines = 0
            while handle.tell() < start:
                data = handle.read(min(CHUNK_BYTES, start - handle.tell()))
                if not data:
                    break
                lines += data.count(b"\n")
            read = 0

            def chunks() -> Iterator[bytes]:
                nonlocal read
                while read < end - start:
                    data = handle.read(min(CHUNK_BYTES, end - start - read))
                    if not data:
                        return
                    if read == 0 and start == 0 and data.startswith(_UTF8_BOM):
                        data = data[len(_UTF8_BOM) :]
                        read += len(_UTF8_BOM)
                    read += len(data)
                    self._part_read = read
                    yield data

            yield from _ndjson_rows(
                self._path, chunks(), self._max_row_bytes, self._skip, lines_before=lines
            )
            if read < end - start:
                raise InputError(
                    f"{self._path}: the file shrank while it was read ({start + read:,} of "
                    f"its {self.total_bytes:,} bytes were there); read it again once it is "
                    "complete"
                )


class ContentReader:
    """Reads the rows of one export's content (a file's, a blob's) from a stream of bytes:
    gzip or not, JSON array, NDJSON, wrapped records or CSV, told from the content."""

    def __init__(
        self,
        name: str,
        stream: _Readable,
        total_bytes: int,
        *,
        max_row_bytes: int = 1_048_576,
        date_order: DateOrder | None = None,
        what: str = "content",
        skip: EarlySkip | None = None,
    ) -> None:
        """`name` prefixes every message (a path, a blob's URL); `total_bytes` is how much
        the stream holds, for messages; `what` names it in them ("file", "blob"). With
        `skip`, JSON rows it recognises are yielded as its `Skipped` (not CSV rows: a
        portal export's date order may be settled by any row)."""
        self._name = name
        self._disk = _CountingReader(stream)
        self._total = total_bytes
        self._max_row_bytes = max_row_bytes
        self._date_order = date_order
        self._what = what
        self._skip = skip

    @property
    def count(self) -> int:
        """Bytes consumed from the stream so far (compressed bytes if gzip)."""
        return self._disk.count

    def __iter__(self) -> Iterator[Row]:
        """Yields every row in order, rejected ones included."""
        layout, content = self.layout()
        name, limit, skip = self._name, self._max_row_bytes, self._skip
        if layout is Layout.ARRAY:
            yield from _json_array_rows(name, content, limit, skip)
        elif layout is Layout.ENVELOPE:
            # `{"records": [...]}`, `{"value": [...], "nextLink": ...}`: streamed, however
            # many records the array holds.
            yield from _json_array_rows(name, content, limit, skip, envelope=True)
        elif layout is Layout.PRETTY:
            # Objects written over several lines each (a pretty-printed event, the portal's
            # JSON view) read as the elements of an array.
            wrapped = itertools.chain((b"[",), content, (b"]",))
            yield from _json_array_rows(name, wrapped, limit, skip)
        elif layout is Layout.NDJSON or layout is Layout.GZIP_NDJSON:
            yield from _ndjson_rows(name, content, limit, skip)
        elif layout is Layout.CSV:
            yield from _CsvReader(name, limit, self._date_order).rows(content)

    def layout(self) -> tuple[Layout | None, Iterator[bytes]]:
        """How the content is laid out, told from its start, and the content (decompressed,
        without its BOM); None for content with nothing but blanks."""
        disk = self._disk
        compressed = disk.peek(len(_GZIP_MAGIC))[: len(_GZIP_MAGIC)] == _GZIP_MAGIC
        chunks = self._gunzip(disk) if compressed else self._plain(disk)
        first, content = self._sniff(chunks)
        if first is None:
            return None, content
        if first == _LBRACKET:
            return Layout.ARRAY, content
        if first != _LBRACE:
            return Layout.CSV, content
        head, content = _peek(content)
        start = _JSON_BLANK.match(head).end()  # type: ignore[union-attr]  # always matches
        if _ENVELOPE_HEAD.match(head, start) is not None:
            return Layout.ENVELOPE, content
        if _starts_pretty(head, start):
            return Layout.PRETTY, content
        return (Layout.GZIP_NDJSON if compressed else Layout.NDJSON), content

    def _plain(self, disk: _CountingReader) -> Iterator[bytes]:
        while True:
            try:
                chunk = disk.read(CHUNK_BYTES)
            except OSError as err:
                raise InputError(
                    f"{self._name}: reading failed after {disk.count:,} bytes: {err}"
                ) from err
            if not chunk:
                return
            yield chunk

    def _gunzip(self, disk: _CountingReader) -> Iterator[bytes]:
        """Decompresses gzip members one after another, yielding whatever each piece gives."""
        # zlib directly rather than GzipFile: it hands over every byte decompressed before a
        # truncation or corruption, so all rows before the damage reach the caller.
        produced = 0

        def broken(detail: str) -> InputError:
            return InputError(
                f"{self._name}: the gzip data is {detail} after {produced:,} bytes of content"
                f" ({disk.count:,} of {self._total:,} bytes of the {self._what} read)"
            )

        inflater = zlib.decompressobj(wbits=31)  # 31: gzip wrapper, trailer CRC checked
        member_started = False
        while True:
            try:
                data = disk.read(_COMPRESSED_PIECE)
            except OSError as err:
                raise broken(f"unreadable ({err})") from err
            if not data:
                break
            while data or (member_started and not inflater.eof):
                if not member_started:
                    # gzip writers may pad the file with zero bytes after the last member
                    data = data.lstrip(b"\x00")
                    if not data:
                        break
                    member_started = True
                try:
                    # Bounded output per call: a small compressed piece can inflate enormously.
                    out = inflater.decompress(data, CHUNK_BYTES)
                except zlib.error as err:
                    raise broken(f"corrupt ({err})") from err
                data = inflater.unconsumed_tail
                if out:
                    produced += len(out)
                    yield out
                if inflater.eof:
                    data = inflater.unused_data
                    inflater = zlib.decompressobj(wbits=31)
                    member_started = False
                elif not data and len(out) < CHUNK_BYTES:
                    break  # this piece is used up; more output needs more input
        if member_started:
            raise broken("truncated (the file ends inside a compressed member)")

    def _sniff(self, chunks: Iterator[bytes]) -> tuple[int | None, Iterator[bytes]]:
        """Returns the first byte that is not blank and the content again, without its BOM."""
        seen: list[bytes] = []
        blank = 0
        for chunk in chunks:
            content = chunk
            if not seen:
                if chunk.startswith(_UTF8_BOM):
                    content = chunk[len(_UTF8_BOM) :]
                elif chunk.startswith(_UTF16_BOMS):
                    raise InputError(
                        f"{self._name}: the {self._what} is UTF-16 text; export it as UTF-8"
                    )
            seen.append(content)
            end = _JSON_BLANK.match(content).end()  # type: ignore[union-attr]  # always matches
            if end < len(content):
                first = content[end]
                if first not in (_LBRACKET, _LBRACE):
                    head = content[: 64 * 1024]
                    # A stray NUL in a text export is a damaged value, not a binary file: in a
                    # binary file control bytes are more than one in twenty.
                    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
                    if controls * 20 > len(head):
                        raise InputError(
                            f"{self._name}: the {self._what} is binary, not JSON, NDJSON or "
                            "CSV text"
                        )
                    if _ndjson_after_a_fragment(content[end:]):
                        first = _LBRACE
                return first, itertools.chain(seen, chunks)
            blank += len(content)
            if blank > _MAX_LEADING_BLANK:
                raise InputError(
                    f"{self._name}: the {self._what} starts with {blank:,} blank bytes"
                )
        return None, iter(())


def _peek(chunks: Iterator[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """The first chunk, at least `_ENVELOPE_LOOKAHEAD` bytes if the content is that long, and
    the content again."""
    seen: list[bytes] = []
    size = 0
    for chunk in chunks:
        seen.append(chunk)
        size += len(chunk)
        if size >= _ENVELOPE_LOOKAHEAD:
            break
    return b"".join(seen), itertools.chain(seen, chunks)


def _starts_pretty(head: bytes, start: int) -> bool:
    """Whether the first object opens a line of its own (`{` and nothing else on it): an
    object written over several lines, not one object per line."""
    end = head.find(b"\n", start)
    first_line = head[start:] if end < 0 else head[start:end]
    return first_line.rstrip() == b"{"


def _ndjson_after_a_fragment(content: bytes) -> bool:
    """Whether text that does not start with `{` is NDJSON whose first line was cut (a file
    split mid-line): the next lines, as far as the first chunk shows them, all start with
    `{`. A CSV export's lines never do."""
    lines = [line.strip() for line in content.split(b"\n")[1:6]]
    lines = [line for line in lines if line]
    return len(lines) >= 2 and all(line.startswith(b"{") for line in lines)


def _row(source: str, line: int, value: Any, skip: EarlySkip | None) -> Row | list[Row]:
    """Turns one decoded JSON value into a row, or rejects it if it is not an object; an
    object that wraps records (`{"records": [...]}`) gives a row for each. With `skip`, a
    Log Analytics row it recognises gives its `Skipped`."""
    if type(value) is dict and "Type" in value:
        # The common case, a Log Analytics row: skip the other schemas' checks.
        table = table_of(value)
        if skip is not None:
            skipped = skip(table, value)
            if skipped is not None:
                return skipped
        return RawRow(source=source, line=line, table=table, fields=value)
    if not isinstance(value, dict):
        return RejectedRow(
            source=source, line=line, reason=f"expected a JSON object, found {_kind(value)}"
        )
    records = _wrapped_records(value)
    if records is not None:
        rows: list[Row] = []
        for record in records:
            row = _row(source, line, record, skip)
            if type(row) is list:
                rows.append(RejectedRow(source=source, line=line, reason=_NESTED_ENVELOPE))
            else:
                rows.append(row)  # type: ignore[arg-type]  # not a list, checked just above
        return rows
    fields = log_analytics_columns(value)
    return RawRow(source=source, line=line, table=table_of(fields), fields=fields)


_NESTED_ENVELOPE: Final = "expected a record, found another array of records inside one"


def _wrapped_records(value: dict[str, Any]) -> list[Any] | None:
    """The records of an object that only wraps them, or None."""
    keys = [key for key in value if key in ENVELOPE_KEYS]
    if len(keys) != 1 or not isinstance(value[keys[0]], list):
        return None
    if any(key not in ENVELOPE_KEYS and key not in _ENVELOPE_EXTRAS for key in value):
        return None
    return value[keys[0]]  # type: ignore[no-any-return]  # a list, checked just above


def _kind(value: Any) -> str:
    """Names the kind of a decoded JSON value that is not an object, for a rejection."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _too_big(source: str, line: int, size: int, limit: int) -> RejectedRow:
    return RejectedRow(
        source=source, line=line, reason=f"row is {size:,} bytes, over the {limit:,}-byte limit"
    )


def _decode_json(data: bytes, line: int) -> tuple[Any, str | None]:
    """Decodes one JSON document that starts on `line`; returns (value, None) or (None, reason)."""
    try:
        return orjson.loads(data), None
    except orjson.JSONDecodeError as err:
        orjson_error = err
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, f"invalid UTF-8: {_utf8_problem(data, err, line)}"
    try:
        # orjson refuses some JSON that exporters do write and whose values must be kept as
        # they are: lone surrogate escapes, raw control characters, numbers beyond a double.
        return json.loads(text, strict=False), None
    except (ValueError, RecursionError):
        at_line = line + orjson_error.lineno - 1
        return (
            None,
            f"invalid JSON: {orjson_error.msg} at line {at_line}, column {orjson_error.colno}",
        )


def _utf8_problem(data: bytes, err: UnicodeDecodeError, line: int) -> str:
    line += data.count(b"\n", 0, err.start)
    column = err.start - data.rfind(b"\n", 0, err.start)
    return f"byte 0x{data[err.start]:02x} at line {line}, column {column}"


def _ndjson_rows(
    source: str,
    chunks: Iterator[bytes],
    limit: int,
    skip: EarlySkip | None = None,
    *,
    lines_before: int = 0,
) -> Iterator[Row]:
    """Reads one JSON object per line; blank lines are skipped. `lines_before`: lines of the
    file before these chunks (a part of it read on its own), for the line numbers."""
    loads = orjson.loads
    carry = b""
    line = lines_before
    skipped: int | None = None  # bytes of an over-limit line discarded so far
    for chunk in chunks:
        pieces = chunk.split(b"\n")
        tail = pieces.pop()
        if pieces:
            if skipped is not None:
                line += 1
                yield _too_big(source, line, skipped + len(pieces[0]), limit)
                skipped = None
                del pieces[0]
            elif carry:
                pieces[0] = carry + pieces[0]
            carry = b""
            for piece in pieces:
                line += 1
                # orjson first, inline: nearly every line is a valid object within the limit,
                # and a call less per row is a sixth of reading time. Anything else takes the
                # general path, which names the problem.
                try:
                    value = loads(piece) if len(piece) <= limit else _UNREAD
                except orjson.JSONDecodeError:
                    value = _UNREAD
                if value is _UNREAD:
                    row = _ndjson_row(source, line, piece, limit, skip)
                else:
                    row = _row(source, line, value, skip)
                if type(row) is list:
                    yield from row
                elif row is not None:
                    yield row  # type: ignore[misc]  # not a list, checked just above
        if skipped is not None:
            skipped += len(tail)
        else:
            carry = carry + tail if carry else tail
            if len(carry) > limit:
                # A line with no end in sight: count it instead of holding it.
                skipped = len(carry)
                carry = b""
    if skipped is not None:
        yield _too_big(source, line + 1, skipped, limit)
    elif carry:
        row = _ndjson_row(source, line + 1, carry, limit, skip)
        if type(row) is list:
            yield from row
        elif row is not None:
            yield row  # type: ignore[misc]  # not a list, checked just above


_UNREAD: Final = object()
"""A line the inline fast path leaves to `_ndjson_row`."""


def _ndjson_row(
    source: str, line: int, data: bytes, limit: int, skip: EarlySkip | None
) -> Row | list[Row] | None:
    if len(data) > limit:
        return _too_big(source, line, len(data), limit)
    value, problem = _decode_json(data, line)
    if problem is None:
        return _row(source, line, value, skip)
    if not data.strip():
        return None  # a blank line
    return RejectedRow(source=source, line=line, reason=problem)


@functools.lru_cache(maxsize=16)
def _element_start(newline_indent: bytes) -> re.Pattern[bytes]:
    """Matches the start of a top-level element written at the given indentation."""
    return re.compile(re.escape(newline_indent) + rb"[{\[]")


def _line_at(buf: bytes, line: int, line_pos: int, pos: int) -> int:
    return line + buf.count(b"\n", line_pos, pos)


def _scan_structure(
    buf: bytes, scan: int, n: int, stack: list[int], watch: bytes | None
) -> tuple[int, int]:
    """Follows brackets from `scan` until the element closes, breaks, or the buffer ends.

    Returns the outcome and where scanning stopped. `stack` holds the closers still
    expected and carries over between calls. With `watch` (a newline and the element's
    indentation), an opener right after it means the element never closed: _UNCLOSED.
    """
    match = _TO_STRUCTURE.match
    while True:
        p = match(buf, scan).end()  # type: ignore[union-attr]  # always matches
        if p == n:
            return _MORE, p
        c = buf[p]
        if c == _QUOTE:
            # A string that runs past a newline is broken; otherwise it continues in the
            # next chunk.
            return (_BROKEN if buf.find(b"\n", p, n) >= 0 else _MORE), p
        if c in _CLOSER_OF:
            if watch is not None and p >= len(watch) and buf.startswith(watch, p - len(watch)):
                return _UNCLOSED, p
            if len(stack) >= MAX_NESTING:
                return _DEEP, p
            stack.append(_CLOSER_OF[c])
        elif stack.pop() != c:
            return _BROKEN, p
        elif not stack:
            return _DONE, p + 1
        scan = p + 1


def _json_array_rows(
    source: str,
    chunks: Iterator[bytes],
    limit: int,
    skip: EarlySkip | None = None,
    *,
    envelope: bool = False,
) -> Iterator[Row]:
    """Reads the elements of one or more top-level JSON arrays, one element at a time; with
    `envelope`, of the arrays of records that objects such as `{"records": [...]}` wrap.

    Where elements start lines of their own (pretty-printed as `az` prints them, or one per
    line) the end of an object is guessed with a plain search and orjson confirms it. Otherwise,
    or when orjson disagrees, a regex finds the next brace or bracket outside strings in C and
    Python tracks nesting only at those. An element so broken that its end cannot be found is
    rejected and reading resumes at the next line that starts an element at the same
    indentation; if the elements do not start lines of their own there is nowhere to resume,
    and InputError is raised.
    """
    buf = b""
    n = 0
    eof = False
    state = _OUTSIDE
    pos = 0  # next byte to read outside elements
    line, line_pos = 1, 0  # buf[line_pos] lies on line `line`
    array_line = 0
    # The element being read. `start` goes negative once an over-limit element is dropped.
    start = scan = 0
    elem_line = 0
    stack: list[int] = []
    newline_indent: bytes | None = None  # b"\n" + the element's indentation, if it starts a line
    layout: bytes | None = None  # the last such indentation: where to resume after a break
    trusted: bytes | None = None  # the indentation of the last element that was valid JSON
    unsure: tuple[int, str] | None = None  # a break resumed by `layout`, not its own line
    in_envelope = False  # inside a wrapping object, after its array of records
    guess = True  # whether guessing element ends has held so far in this file
    shortest = 0  # bytes in the shortest element so far: no element can end sooner

    while True:
        if state == _ELEMENT:
            outcome, scan = _scan_structure(buf, scan, n, stack, None)
            if outcome == _DONE:
                if scan - start > limit:
                    yield _too_big(source, elem_line, scan - start, limit)
                else:
                    value, problem = _decode_json(buf[start:scan], elem_line)
                    if problem is None and not isinstance(value, dict) and trusted is not None:
                        # A stray `[` that balanced with the closing bracket of the array:
                        # the elements it took in are read again, the stray is rejected.
                        found = _element_start(trusted).search(buf, start + 1, scan)
                        if found is not None:
                            yield RejectedRow(
                                source=source,
                                line=elem_line,
                                reason=f"expected a JSON object, found {_kind(value)} that "
                                "takes in the elements after it",
                            )
                            pos = found.start()
                            state = _ARRAY
                            continue
                    if problem is None:
                        row = _row(source, elem_line, value, skip)
                        if type(row) is list:
                            yield from row
                        else:
                            yield row  # type: ignore[misc]  # not a list, checked just above
                        trusted = newline_indent or trusted
                        shortest = min(shortest, scan - start) if shortest else scan - start
                        if guess and newline_indent is not None:
                            # A valid element that the guess would have cut elsewhere: the
                            # layout is not what the guess assumes, so stop guessing.
                            guess = _guess_end(buf, start, newline_indent, limit, 0) == scan
                    else:
                        yield RejectedRow(source=source, line=elem_line, reason=problem)
                        # Brackets that balanced only by taking in the elements after it (a
                        # stray `[` or `{`): read those again from the first that starts a
                        # line where the elements before started theirs.
                        found = None
                        if trusted is not None:
                            found = _element_start(trusted).search(buf, start + 1, scan)
                        if found is not None:
                            pos = found.start()
                            state = _ARRAY
                            continue
                pos = scan
                state = _ARRAY
                continue
            if outcome in (_BROKEN, _DEEP):
                problem = _structure_problem(
                    buf, scan, _line_at(buf, line, line_pos, scan), deep=outcome == _DEEP
                )
                yield RejectedRow(source=source, line=elem_line, reason=f"invalid JSON: {problem}")
                # An element that did not start a line (two on one line) resumes where the
                # elements before it started theirs; if none starts there again, the end of
                # the file says so (rows after it on its line would be lost unsaid).
                if trusted is not None and trusted != newline_indent:
                    # An element laid out unlike the valid ones before it (a stray bracket
                    # in front of it): resume where they started theirs, if one does here.
                    found = _element_start(trusted).search(buf, start + 1)
                    if found is not None:
                        pos = found.start()
                        state = _ARRAY
                        continue
                if newline_indent is None and layout is not None:
                    newline_indent, unsure = layout, (elem_line, problem)
                if newline_indent is None:
                    raise _cannot_resync(source, elem_line, problem)
                found = _element_start(newline_indent).search(buf, start + 1)
                if found is not None:
                    pos = found.start()
                    state = _ARRAY
                    continue
                if buf[scan] == _RBRACKET:
                    # The last element broke on the array's own closing bracket (a stray
                    # `{` in it): the array ends there.
                    pos = scan
                    state = _ARRAY
                    unsure = None
                    continue
                pos = max(start + 1, n - len(newline_indent))
                state = _RESYNC
            elif n - start > limit:
                found = None
                if newline_indent is not None:
                    found = _element_start(newline_indent).search(buf, start + 1)
                if found is not None:
                    # Not a huge element but one that never closed and ran into the next.
                    next_line = _line_at(buf, line, line_pos, found.start() + 1)
                    yield RejectedRow(
                        source=source,
                        line=elem_line,
                        reason=f"invalid JSON: not closed before the element at line {next_line}",
                    )
                    pos = found.start()
                    state = _ARRAY
                    continue
                state = _OVERSIZE
        elif state == _OVERSIZE:
            # Like _ELEMENT, but keeping none of the bytes, and watching for an element start
            # at this element's indentation, which would mean that it was never closed.
            outcome, scan = _scan_structure(buf, scan, n, stack, newline_indent)
            if outcome == _DONE:
                yield _too_big(source, elem_line, scan - start, limit)
                pos = scan
                state = _ARRAY
                continue
            if outcome == _UNCLOSED:
                assert newline_indent is not None  # _UNCLOSED needs it
                next_line = _line_at(buf, line, line_pos, scan)
                yield RejectedRow(
                    source=source,
                    line=elem_line,
                    reason=f"invalid JSON: over the {limit:,}-byte limit and not closed before"
                    f" the element at line {next_line}",
                )
                pos = scan - len(newline_indent)
                state = _ARRAY
                continue
            if outcome in (_BROKEN, _DEEP):
                problem = _structure_problem(
                    buf, scan, _line_at(buf, line, line_pos, scan), deep=outcome == _DEEP
                )
                yield RejectedRow(
                    source=source,
                    line=elem_line,
                    reason=f"invalid JSON: {problem} (and over the {limit:,}-byte limit)",
                )
                if newline_indent is None and layout is not None:
                    newline_indent, unsure = layout, (elem_line, problem)
                if newline_indent is None:
                    raise _cannot_resync(source, elem_line, problem)
                pos = scan
                state = _RESYNC
                continue
            if scan < n and n - scan > CHUNK_BYTES:
                # An endless string in an element that is being dropped anyway: keep only its
                # opening quote and a trailing backslash that may escape the next byte.
                line = _line_at(buf, line, line_pos, scan)
                escaped = (n - len(buf.rstrip(b"\\"))) % 2 == 1
                kept = b'"\\' if escaped else b'"'
                start -= n - len(kept)
                buf, n, scan, line_pos = kept, len(kept), 0, 0
        elif state == _ARRAY:
            gap_start = pos
            p = _ARRAY_GAP.match(buf, pos).end()  # type: ignore[union-attr]  # always matches
            if p == n:
                # Keep the last newline: it tells whether the next element starts a line.
                last_newline = buf.rfind(b"\n", pos, n)
                pos = last_newline if last_newline >= 0 else n
            else:
                c = buf[p]
                if c == _RBRACKET:
                    pos = p + 1
                    state = _OUTSIDE
                    continue
                line += buf.count(b"\n", line_pos, p)
                line_pos = p
                if c in _CLOSER_OF:
                    last_newline = buf.rfind(b"\n", gap_start, p)
                    if last_newline < 0:
                        newline_indent = None
                    elif newline_indent is None or not (
                        p - last_newline == len(newline_indent)
                        and buf.startswith(newline_indent, last_newline)
                    ):
                        # Not the same indentation as the element before: work it out again.
                        newline_indent = None
                        if _INDENT.fullmatch(buf, last_newline + 1, p):
                            newline_indent = buf[last_newline:p]
                    if newline_indent is not None:
                        layout = newline_indent
                    if guess and newline_indent is not None and c == _LBRACE:
                        end = _guess_end(buf, p, newline_indent, limit, shortest)
                        if end > 0:
                            try:
                                value = orjson.loads(buf[p:end])
                            except orjson.JSONDecodeError:
                                pass  # the brace scanner below finds out what is wrong
                            else:
                                row = _row(source, line, value, skip)
                                if type(row) is list:
                                    yield from row
                                else:
                                    yield row  # type: ignore[misc]  # not a list
                                trusted = newline_indent
                                shortest = min(shortest, end - p) if shortest else end - p
                                pos = end
                                continue
                    start, scan, elem_line = p, p + 1, line
                    stack = [_CLOSER_OF[c]]
                    state = _ELEMENT
                    continue
                if c == _RBRACE:
                    yield RejectedRow(
                        source=source, line=line, reason="invalid JSON: '}' outside any element"
                    )
                    pos = p + 1
                    continue
                scalar = _SCALAR.match(buf, p)
                if scalar is not None and (scalar.end() < n or eof):
                    value, problem = _decode_json(buf[p : scalar.end()], line)
                    reason = problem or f"expected a JSON object, found {_kind(value)}"
                    yield RejectedRow(source=source, line=line, reason=reason)
                    pos = scalar.end()
                    continue
                line_end = buf.find(b"\n", p, n)
                if scalar is None and (line_end >= 0 or eof):
                    yield RejectedRow(
                        source=source,
                        line=line,
                        reason="invalid JSON: string not closed before the end of the line",
                    )
                    pos = line_end + 1 if line_end >= 0 else n
                    continue
                if n - p > limit:
                    raise InputError(
                        f"{source}: line {line}: a value between the array elements is over"
                        f" the {limit:,}-byte limit"
                    )
                pos = p
        elif state == _RESYNC:
            assert newline_indent is not None  # only entered with it
            found = _element_start(newline_indent).search(buf, pos)
            if found is not None:
                pos = found.start()
                state = _ARRAY
                unsure = None
                continue
            pos = max(pos, n - len(newline_indent))
        else:  # _OUTSIDE: before the first array or after one has closed
            p = _JSON_BLANK.match(buf, pos).end()  # type: ignore[union-attr]  # always matches
            pos = p
            if p < n and envelope:
                line = _line_at(buf, line, line_pos, p)
                line_pos = p
                found = (_ENVELOPE_TAIL if in_envelope else _ENVELOPE_HEAD).match(buf, p)
                if found is not None:
                    pos = found.end()
                    line = _line_at(buf, line, line_pos, pos)
                    line_pos = pos
                    in_envelope = not in_envelope
                    if in_envelope:
                        array_line, state = line, _ARRAY
                    continue
                if in_envelope and buf[p] in _MORE_RECORDS:
                    # A stray `]` closed the records early: more of them follow.
                    yield RejectedRow(
                        source=source,
                        line=line,
                        reason="invalid JSON: ']' closes the records before their end",
                    )
                    state = _ARRAY
                    continue
                if eof or n - p >= _ENVELOPE_LOOKAHEAD:
                    expected = (
                        "the end of the object that wraps the records"
                        if in_envelope
                        else 'another object that wraps records in "records" or "value"'
                    )
                    raise InputError(
                        f"{source}: line {line}: expected {expected}, found {buf[p : p + 20]!r}"
                    )
            elif p < n:
                line = _line_at(buf, line, line_pos, p)
                line_pos = p
                if buf[p] != _LBRACKET:
                    raise InputError(
                        f"{source}: line {line}: unexpected {buf[p : p + 20]!r} after the end of"
                        " the JSON array"
                    )
                # Arrays written one after another (`cat a.json b.json`) read as one.
                array_line = line
                pos = p + 1
                state = _ARRAY
                continue

        # The buffer is used up: read more, keeping only what the state still needs.
        if eof:
            if state == _RESYNC and unsure is not None:
                raise _cannot_resync(source, *unsure)
            if state in (_ELEMENT, _OVERSIZE):
                raise InputError(
                    f"{source}: the file ends inside the element that starts at line"
                    f" {elem_line} (truncated?)"
                )
            if state == _ARRAY:
                raise InputError(
                    f"{source}: the JSON array that starts at line {array_line} is not closed"
                    " before the end of the file (truncated?)"
                )
            if in_envelope:
                raise InputError(
                    f"{source}: the object that wraps the records of line {array_line} is not"
                    " closed before the end of the file (truncated?)"
                )
            return
        if state == _ELEMENT:
            keep = start
        elif state == _OVERSIZE:
            margin = len(newline_indent) if newline_indent is not None else 0
            keep = max(0, scan - margin)
        else:
            keep = pos
        chunk = next(chunks, None)
        if chunk is None:
            eof = True
        if keep > 0:
            if keep > line_pos:
                line = _line_at(buf, line, line_pos, keep)
                line_pos = keep
            # One copy: no intermediate slice of a buffer that may hold a whole row.
            buf = b"".join((memoryview(buf)[keep:], chunk or b""))
            pos -= keep
            scan -= keep
            start -= keep
            line_pos -= keep
        elif chunk is not None:
            buf += chunk
        n = len(buf)


def _guess_end(buf: bytes, start: int, newline_indent: bytes, limit: int, at_least: int) -> int:
    """Guesses where the object at `start`, `at_least` bytes long, ends from the layout alone.

    Returns -1 when there is no guess. A wrong guess is harmless: orjson refuses it.
    """
    n = len(buf)
    stop = min(n, start + limit + len(newline_indent) + 1)
    if start + 1 < n and buf[start + 1] in _BLANK_OR_NEWLINE:
        # Pretty-printed: the closing brace sits on its own line at the opening's indentation.
        closing = newline_indent + b"}"
        found = buf.find(closing, start + max(1, at_least - len(closing)), stop)
        return found + len(closing) if found >= 0 else -1
    # One element per line: it ends where the line does, before any comma.
    end = buf.find(b"\n", start, stop)
    if end < 0:
        return -1
    while end > start and buf[end - 1] in _LINE_END_PADDING:
        end -= 1
    return end


def _structure_problem(buf: bytes, at: int, line: int, *, deep: bool = False) -> str:
    if deep:
        return f"nested more than {MAX_NESTING} deep at line {line}"
    if buf[at] == _QUOTE:
        return f"string not closed before the end of line {line}"
    line_start = buf.rfind(b"\n", 0, at)
    # Without the line's start in the buffer the column is unknown.
    column = f", column {at - line_start}" if line_start >= 0 else ""
    return f"unbalanced {chr(buf[at])!r} at line {line}{column}"


def _cannot_resync(source: str, elem_line: int, problem: str) -> InputError:
    return InputError(
        f"{source}: line {elem_line}: the element is broken ({problem}) and the elements after it"
        " do not start lines of their own, so reading cannot resume at the next one"
    )


def _csv_skip(state: int, data: bytes, i: int) -> tuple[int, int]:
    """Follows quoting through `data[i:]`; returns the state and the end of the record, or -1."""
    n = len(data)
    while i < n:
        if state == _IN_QUOTES:
            j = data.find(b'"', i)
            if j < 0:
                return _IN_QUOTES, -1
            state, i = _QUOTE_SEEN, j + 1
        elif state in (_QUOTE_SEEN, _FIELD_START):
            # After a quote inside quotes, a second one is a literal quote; at the start of a
            # field, a quote opens a quoted value; anything else is plain text.
            if data[i] == _QUOTE:
                state, i = _IN_QUOTES, i + 1
            else:
                state = _UNQUOTED
        else:
            end = _CSV_FIELD_END.search(data, i)
            if end is None:
                return _UNQUOTED, -1
            i = end.end()
            if data[end.start()] == _NEWLINE:
                return _FIELD_START, i
            state = _FIELD_START
    return state, -1


class _CsvReader:
    """Reads a Log Analytics portal CSV export: a header line, then one record per row."""

    def __init__(self, source: str, limit: int, date_order: DateOrder | None = None) -> None:
        self._source = source
        self._limit = limit
        self._columns: list[str] | None = None
        self._picks: list[int] | None = None  # column positions to keep when names repeat
        self._dates = PortalDates(source, date_order)

    def rows(self, chunks: Iterator[bytes]) -> Iterator[RawRow | RejectedRow]:
        """Yields the records after the header, each from the line it starts on, their times
        in ISO 8601 whatever the locale that wrote them."""
        return self._dates.resolve(self._records(chunks))

    def _records(self, chunks: Iterator[bytes]) -> Iterator[RawRow | RejectedRow]:
        if csv.field_size_limit() < self._limit:
            # A cell may be as long as a whole row: the row size check rejects it, not csv.
            csv.field_size_limit(self._limit)
        limit = self._limit
        carry = b""
        line = 0  # newlines read so far
        parts: list[bytes] = []  # physical lines of the record being assembled
        record_line = 0
        record_size = 0
        skip_state: int | None = None  # quote state while discarding an over-limit record
        for chunk in chunks:
            data = carry + chunk if carry else chunk
            carry = b""
            i, n = 0, len(data)
            while i < n:
                if skip_state is not None:
                    skip_state, end = _csv_skip(skip_state, data, i)
                    stop = n if end < 0 else end
                    line += data.count(b"\n", i, stop)
                    record_size += stop - i
                    i = stop
                    if end >= 0:
                        yield self._too_big(record_line, record_size)
                        skip_state, record_size = None, 0
                    continue
                newline = data.find(b"\n", i)
                stop = n if newline < 0 else newline + 1
                if record_size + stop - i > limit:
                    if not parts:
                        record_line = line + 1
                    skip_state = _IN_QUOTES if parts else _FIELD_START
                    parts = []
                    continue
                if newline < 0:
                    carry = data[i:]
                    break
                physical = data[i:stop]
                i = stop
                line += 1
                if not parts:
                    if physical in _CSV_BLANK_LINES:
                        continue
                    record_line = line
                    complete = _CSV_RECORD_LINE.fullmatch(physical) is not None
                else:
                    complete = _CSV_CLOSING_LINE.fullmatch(physical) is not None
                parts.append(physical)
                record_size += len(physical)
                if complete:
                    row = self._record(b"".join(parts), record_line)
                    parts, record_size = [], 0
                    if row is not None:
                        yield row
        if skip_state is not None:
            yield self._too_big(record_line, record_size)
            return
        if carry and (parts or carry not in _CSV_BLANK_LINES):
            if not parts:
                record_line = line + 1
            pattern = _CSV_CLOSING_LINE if parts else _CSV_RECORD_LINE
            complete = pattern.fullmatch(carry) is not None
            parts.append(carry)
        elif parts:
            complete = False  # the last line ended inside a quoted value
        else:
            return
        if not complete:
            yield RejectedRow(
                source=self._source,
                line=record_line,
                reason="quoted value not closed before the end of the file",
            )
            return
        row = self._record(b"".join(parts), record_line)
        if row is not None:
            yield row

    def _too_big(self, line: int, size: int) -> RejectedRow:
        if self._columns is None:
            raise InputError(
                f"{self._source}: line {line}: the header is {size:,} bytes, over the"
                f" {self._limit:,}-byte limit; this is not a CSV export"
            )
        return _too_big(self._source, line, size, self._limit)

    def _record(self, data: bytes, line: int) -> RawRow | RejectedRow | None:
        """Parses one complete record; the first one is the header and yields nothing."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            problem = f"invalid UTF-8: {_utf8_problem(data, err, line)}"
            if self._columns is None:
                raise InputError(f"{self._source}: the header line has {problem}") from err
            return RejectedRow(source=self._source, line=line, reason=problem)
        try:
            values = next(csv.reader((text,)))
        except csv.Error as err:
            if self._columns is None:
                raise InputError(f"{self._source}: line {line}: invalid CSV header: {err}") from err
            return RejectedRow(source=self._source, line=line, reason=f"invalid CSV: {err}")
        if self._columns is None:
            self._set_header(values, line)
            return None
        columns = self._columns
        if len(values) != len(columns):
            return RejectedRow(
                source=self._source,
                line=line,
                reason=f"record has {len(values)} fields but the header has {len(columns)}",
            )
        if self._picks is None:
            fields = dict(zip(columns, values, strict=True))
        else:
            fields = {columns[i]: values[i] for i in self._picks}
        return RawRow(source=self._source, line=line, table=table_of(fields), fields=fields)

    def _set_header(self, names: list[str], line: int) -> None:
        text = ",".join(names)
        if _CONTROL.search(text) or len(names) < 2:
            raise InputError(
                f"{self._source}: line {line}: not JSON, NDJSON or a CSV export with a header"
                f" line (first line: {text[:60]!r})"
            )
        bases = {
            _COLUMN_SUFFIX.sub("", name) for name in names if "[local time]" not in name.lower()
        }
        local = [
            name
            for name in names
            if name.strip().lower().endswith("[local time]")
            and _COLUMN_SUFFIX.sub("", name) not in bases
        ]
        if local:
            # Local times carry no offset: read as UTC they would shift every event.
            raise InputError(
                f"{self._source}: line {line}: column {local[0]!r} holds local times; "
                "export again with the time zone set to UTC"
            )
        # The portal adds the time zone to time columns: `TimeGenerated [UTC]`.
        columns = [_COLUMN_SUFFIX.sub("", name) for name in names]
        marked = [c for c, n in zip(columns, names, strict=True) if n.rstrip().endswith("[UTC]")]
        self._dates.set_columns(columns, marked)
        if len(set(columns)) != len(columns):
            first_of: dict[str, int] = {}
            for i, name in enumerate(columns):
                first_of.setdefault(name, i)
            self._picks = sorted(first_of.values())
        self._columns = columns


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _CountingReader:
    """Reads a stream and counts the bytes, for progress; can look ahead without reading."""

    def __init__(self, stream: _Readable) -> None:
        self._stream = stream
        self._ahead = b""
        self.count = 0

    def peek(self, size: int) -> bytes:
        """Up to `size` bytes that the next read returns first."""
        while len(self._ahead) < size:
            data = self._stream.read(size - len(self._ahead))
            if not data:
                break
            self._ahead += data
        return self._ahead

    def read(self, size: int = -1, /) -> bytes:
        """Reads up to `size` bytes."""
        if self._ahead:
            # The bytes looked at, and as many more as asked for: a chunk is never cut short
            # by a look ahead (a BOM is looked for at the start of the first one).
            data, self._ahead = self._ahead, b""
            if size < 0 or len(data) < size:
                data += self._stream.read(size - len(data) if size >= 0 else -1)
        else:
            data = self._stream.read(size)
        self.count += len(data)
        return data

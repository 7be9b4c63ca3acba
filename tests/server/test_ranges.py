"""Byte ranges of GET /infer: a browser's <audio> element asks for them (Safari plays only media
answered 206), and seeking asks for a part of the file."""

from __future__ import annotations

import pytest

TEXT = {"text": "안녕하세요. 반갑습니다.", "voice": "tiny"}


def whole(client) -> bytes:
    response = client.get("/infer", params=TEXT)
    assert response.status_code == 200 and response.headers["accept-ranges"] == "bytes"
    return response.content


@pytest.mark.parametrize(("header", "first", "last"), [("bytes=0-1", 0, 1), ("bytes=100-", 100, None),
                                                         ("bytes=-10", -10, None), ("bytes=0-999999999", 0, None)])
def test_a_byte_range_is_answered_206_with_that_part(make_client, header, first, last) -> None:
    client = make_client()
    body = whole(client)
    size = len(body)
    start = first % size
    end = size - 1 if last is None else last
    response = client.get("/infer", params=TEXT, headers={"Range": header})
    assert response.status_code == 206, response.text
    assert response.content == body[start:end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["content-type"] == "audio/wav"


def test_a_range_past_the_end_is_416_naming_the_size(make_client) -> None:
    client = make_client()
    size = len(whole(client))
    response = client.get("/infer", params=TEXT, headers={"Range": f"bytes={size}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"
    assert response.json()["error"]["code"] == "range_not_satisfiable"


def test_if_range_with_the_etag_gets_the_part_and_another_audio_gets_the_whole(make_client) -> None:
    """Parts of two different syntheses must not be joined: a browser resuming a download sends the
    ETag it had in If-Range, and only that audio's parts come back as parts."""
    client = make_client()
    first = client.get("/infer", params=TEXT)
    etag = first.headers["etag"]
    same = client.get("/infer", params=TEXT, headers={"Range": "bytes=0-1", "If-Range": etag})
    assert same.status_code == 206 and same.content == first.content[:2] and same.headers["etag"] == etag
    other = client.get("/infer", params={**TEXT, "text": "다른 문장입니다."}, headers={"Range": "bytes=0-1", "If-Range": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag


@pytest.mark.parametrize("headers", [{"Range": "bytes=0-1,5-9"}, {"Range": "pages=1-2"}, {"Range": "bytes=5-2"},
                                     {"Range": "bytes=-"}, {"Range": "bytes=1-2-3"},
                                     {"Range": "bytes=0-1", "If-Range": '"abc"'}])
def test_other_ranges_get_the_whole_file(make_client, headers) -> None:
    client = make_client()
    body = whole(client)
    response = client.get("/infer", params=TEXT, headers=headers)
    assert response.status_code == 200 and response.content == body


def test_posts_ignore_range(make_client) -> None:
    response = make_client().post("/v1/audio/speech", json={"input": TEXT["text"], "voice": "tiny"},
                                  headers={"Range": "bytes=0-1"})
    assert response.status_code == 200 and len(response.content) > 2


def test_digits_other_than_ascii_are_no_range() -> None:
    """Headers arrive as latin-1: '²' counts as a digit for str.isdigit but int() refuses it (a 500)."""
    from moksori.server.tts import _byte_range

    assert _byte_range({"range": "bytes=\u00b2-"}, 100, '"e"') is None
    assert _byte_range({"range": "bytes=0-\u00b9"}, 100, '"e"') is None
    assert _byte_range({"range": "bytes=2-5"}, 100, '"e"') == (2, 5)


def test_positions_of_thousands_of_digits_are_past_the_end_not_a_500() -> None:
    """int() refuses strings of over 4,300 digits (ValueError: a 500 after the synthesis was paid)."""
    from moksori.server.tts import ApiError, _byte_range

    many = "9" * 5000
    with pytest.raises(ApiError) as error:
        _byte_range({"range": f"bytes={many}-"}, 100, '"e"')
    assert error.value.status == 416
    assert _byte_range({"range": f"bytes=2-{many}"}, 100, '"e"') == (2, 99)
    assert _byte_range({"range": f"bytes=-{many}"}, 100, '"e"') == (0, 99)
    assert _byte_range({"range": f"bytes={'0' * 5000}7-8"}, 100, '"e"') == (7, 8)

"""A studio voice's pronunciation lexicon over the studio API: the owner edits it, nobody else can."""


def test_owner_adds_lists_tests_and_removes_entries(client, tools):
    voice = tools.new_voice(client, "렉시")
    url = f"/api/studio/voices/{voice}/lexicon"
    assert client.get(url).json() == {"entries": []}
    assert client.put(url, json={"written": "카카오T", "spoken": "카카오 티"}).json() == {"written": "카카오T", "spoken": "카카오 티"}
    client.put(url, json={"written": "K-pop", "spoken": "케이 팝"})
    assert client.put(url, json={"written": "K-pop", "spoken": "케이팝"}).status_code == 200  # changes it
    assert client.get(url).json()["entries"] == [
        {"written": "K-pop", "spoken": "케이팝"}, {"written": "카카오T", "spoken": "카카오 티"}]

    tested = client.post(f"{url}/test", json={"text": "카카오T로 K-pop 2곡"}).json()
    assert tested["lexicon"] == "카카오 티로 케이팝 2곡"
    assert tested["normalized"] == "카카오 티로 케이팝 두 곡"
    unreadable = client.post(f"{url}/test", json={"text": "☃"})
    assert unreadable.status_code == 422 and "U+2603" in unreadable.json()["error"]["message"]

    assert client.delete(url, params={"written": "K-pop"}).json() == {"deleted": "K-pop"}
    missing = client.delete(url, params={"written": "K-pop"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "lexicon_entry_not_found"
    assert [e["written"] for e in client.get(url).json()["entries"]] == ["카카오T"]


def test_bad_entries_get_400_or_422_naming_the_problem(client, tools):
    url = f"/api/studio/voices/{tools.new_voice(client, '렉시')}/lexicon"
    blank = client.put(url, json={"written": "   ", "spoken": "x"})
    assert blank.status_code == 400 and "written form is empty" in blank.json()["error"]["message"]
    assert client.put(url, json={"written": "a\nb", "spoken": "x"}).status_code == 400
    assert client.put(url, json={"written": "a" * 101, "spoken": "x"}).status_code == 422
    assert client.put(url, json={"written": "a"}).status_code == 422
    # A spoken form the voice cannot read would make every request with the word fail (422).
    unreadable = client.put(url, json={"written": "눈사람", "spoken": "☃"})
    assert unreadable.status_code == 400 and "U+2603" in unreadable.json()["error"]["message"]
    assert client.get(url).json()["entries"] == []


def test_nobody_reads_or_edits_another_users_lexicon(site, tools):
    alice, bob, anonymous = site.client(), site.client(), site.client()
    alice.post("/api/studio/account/signup", json={"username": "alice", "password": "correct horse"})
    bob.post("/api/studio/account/signup", json={"username": "bob", "password": "battery staple"})
    url = f"/api/studio/voices/{tools.new_voice(alice, '앨리스')}/lexicon"
    alice.put(url, json={"written": "BTS", "spoken": "방탄"})
    for other in (bob, anonymous):
        assert other.get(url).status_code == 404
        assert other.put(url, json={"written": "BTS", "spoken": "x"}).status_code == 404
        assert other.delete(url, params={"written": "BTS"}).status_code == 404
        assert other.post(f"{url}/test", json={"text": "BTS"}).status_code == 404
    assert alice.get(url).json()["entries"] == [{"written": "BTS", "spoken": "방탄"}]


def test_a_foreign_page_cannot_edit_a_lexicon(client, tools):
    url = f"/api/studio/voices/{tools.new_voice(client, '렉시')}/lexicon"
    refused = client.put(url, json={"written": "BTS", "spoken": "방탄"}, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert client.get(url).json()["entries"] == []

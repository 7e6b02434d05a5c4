#!/usr/bin/env python3
"""The sync benchmark's baseline: a naive script that pages through a Protime API (the
sandbox) and inserts every clocking into SQLite in one transaction — no validation, no
ordering rule, no change log, one sync to disk at the end. Standard library only.

Usage: sync_baseline.py BASE_URL TOKEN_URL DB FROM TO
Prints: "<count> <seconds>" on stdout.
"""
import http.client
import json
import sqlite3
import sys
import time
import urllib.parse

base_url, token_url, db_path, date_from, date_to = sys.argv[1:6]
user_agent = "SyncBaseline/1.0 (Bench)"

started = time.monotonic()
token_parts = urllib.parse.urlsplit(token_url)
token_conn = http.client.HTTPConnection(token_parts.hostname, token_parts.port)
form = urllib.parse.urlencode({
    "grant_type": "client_credentials",
    "client_id": "sandbox-client",
    "client_secret": "sandbox-secret",
    "scope": "connector-protimeapi-clockings.read",
})
token_conn.request("POST", token_parts.path, form, {
    "Content-Type": "application/x-www-form-urlencoded", "User-Agent": user_agent})
token = json.loads(token_conn.getresponse().read())["access_token"]

api = urllib.parse.urlsplit(base_url)
conn = http.client.HTTPConnection(api.hostname, api.port)  # one keep-alive connection
headers = {"Authorization": f"Bearer {token}", "User-Agent": user_agent, "Accept": "application/json"}
flt = f"date ge '{date_from}' and date le '{date_to}'"
path = "/connector/protimeapi/api/v1/clockings?" + urllib.parse.urlencode({"filter": flt})

db = sqlite3.connect(db_path)
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE IF NOT EXISTS clockings (id INTEGER PRIMARY KEY, change_version TEXT, json TEXT)")
count = 0
with db:  # one transaction
    while path:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            sys.exit(f"GET {path}: {response.status} {body[:200]!r}")
        page = json.loads(body)
        db.executemany(
            "INSERT OR REPLACE INTO clockings (id, change_version, json) VALUES (?, ?, ?)",
            ((c["id"], c.get("changeVersion"), json.dumps(c)) for c in page["value"]),
        )
        count += len(page["value"])
        link = page.get("nextLink")
        path = urllib.parse.urlsplit(link)._replace(scheme="", netloc="").geturl() if link else None
db.close()
print(count, f"{time.monotonic() - started:.3f}")

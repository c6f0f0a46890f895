"""Resumable upload to relaycast with tuspy (``pip install tuspy``).

    RELAYCAST=http://localhost:8080 KEY=rk_... python upload.py video.mp4

Run it again after an interruption and it resumes where the server's copy ends: the
upload URL is remembered in .relaycast-uploads.json (keyed by the file). When the
upload is done the script waits for the media item to be probed and prints it.
"""

import json
import os
import sys
import time
import urllib.request
from pathlib import Path

from tusclient import client
from tusclient.storage import filestorage

BASE = os.environ.get("RELAYCAST", "http://localhost:8080")
KEY = os.environ.get("KEY", "")
# Large chunks mean few requests (each PATCH counts against the API rate limit).
CHUNK_SIZE = int(os.environ.get("CHUNK_SIZE", 64 * 1024 * 1024))
AUTH = {"Authorization": f"Bearer {KEY}"}


def request(url, method="GET"):
    req = urllib.request.Request(url, method=method, headers={**AUTH, "Tus-Resumable": "1.0.0"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.headers, resp.read()


def wait_until_probed(media_id):
    while True:
        _, body = request(f"{BASE}/v1/media/{media_id}")
        item = json.loads(body)
        if item["status"] not in ("uploading", "processing"):
            return item
        time.sleep(0.5)


def main():
    if not KEY or len(sys.argv) != 2:
        sys.exit("usage: RELAYCAST=http://host:8080 KEY=rk_... python upload.py FILE")
    path = Path(sys.argv[1])
    tus = client.TusClient(f"{BASE}/v1/uploads", headers=AUTH)
    uploader = tus.uploader(
        str(path),
        chunk_size=CHUNK_SIZE,
        metadata={"filename": path.name},
        upload_checksum=True,  # sha1 of every chunk; the server refuses a corrupted one
        retries=5,  # after a failure: ask the server for its offset, continue from there
        retry_delay=2,
        store_url=True,
        url_storage=filestorage.FileStorage(".relaycast-uploads.json"),
    )
    uploader.upload()
    headers, _ = request(uploader.url, method="HEAD")
    item = wait_until_probed(headers["Relaycast-Media-Id"])
    print(json.dumps(item))
    sys.exit(0 if item["status"] == "ready" else 1)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Resumable upload to relaycast with plain tus 1.0 requests: curl, coreutils, openssl.
#
#   RELAYCAST=http://localhost:8080 KEY=rk_... ./upload.sh video.mp4
#
# Creates the upload (POST), sends the file in chunks (PATCH, each with a sha1
# checksum), and after a failed chunk asks the server how much it has (HEAD) and goes
# on from there. Then waits for the media item to be probed and prints it.
set -euo pipefail

RELAYCAST=${RELAYCAST:-http://localhost:8080}
KEY=${KEY:?set KEY to your API key}
FILE=${1:?usage: upload.sh FILE}
CHUNK_SIZE=${CHUNK_SIZE:-67108864} # large chunks: few requests against the rate limit
tus=(-H "Authorization: Bearer $KEY" -H "Tus-Resumable: 1.0.0")

header() { # header NAME < response headers  ->  its value
  tr -d '\r' | awk -v name="$1" 'tolower($1) == tolower(name ":") { print $2 }'
}

size=$(wc -c <"$FILE" | tr -d ' ')
name=$(basename "$FILE" | tr -d '\n' | base64 | tr -d '\n')

# 1. create the upload: Location is where to send bytes, Relaycast-Media-Id the item it becomes
created=$(curl -sS -f -X POST "$RELAYCAST/v1/uploads" "${tus[@]}" \
  -H "Upload-Length: $size" -H "Upload-Metadata: filename $name" -D - -o /dev/null)
location=$(header Location <<<"$created")
media_id=$(header Relaycast-Media-Id <<<"$created")
case $location in http*) upload=$location ;; *) upload=$RELAYCAST$location ;; esac

# 2. send the chunks; after a failure, HEAD says how much arrived: continue from there
chunk=$(mktemp)
trap 'rm -f "$chunk"' EXIT
offset=0
failures=0
while [ "$offset" -lt "$size" ]; do
  (set +o pipefail; tail -c +$((offset + 1)) "$FILE" | head -c "$CHUNK_SIZE" >"$chunk")
  sum=$(openssl dgst -sha1 -binary "$chunk" | base64)
  if reply=$(curl -sS -f -X PATCH "$upload" "${tus[@]}" \
    -H "Content-Type: application/offset+octet-stream" -H "Upload-Offset: $offset" \
    -H "Upload-Checksum: sha1 $sum" --data-binary @"$chunk" -D - -o /dev/null); then
    offset=$(header Upload-Offset <<<"$reply")
    failures=0
    echo "uploaded $offset of $size bytes" >&2
  else
    failures=$((failures + 1))
    [ "$failures" -lt 6 ] || exit 1
    sleep "$failures"
    offset=$(curl -sS -f -I "$upload" "${tus[@]}" | header Upload-Offset) || true
    offset=${offset:-0}
  fi
done

# 3. wait for the server to probe the file, then print the media item
while :; do
  item=$(curl -sS -f "$RELAYCAST/v1/media/$media_id" -H "Authorization: Bearer $KEY")
  case $item in
    *'"status":"uploading"'* | *'"status":"processing"'*) sleep 0.5 ;;
    *) break ;;
  esac
done
echo "$item"
case $item in *'"status":"ready"'*) exit 0 ;; *) exit 1 ;; esac

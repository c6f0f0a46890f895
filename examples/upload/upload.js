// Resumable upload to relaycast with tus-js-client (npm install tus-js-client).
//
//   RELAYCAST=http://localhost:8080 KEY=rk_... node upload.js video.mp4
//
// tus-js-client retries failed requests itself (retryDelays): it asks the server for
// the offset it has and continues from there. In a browser the same code works with a
// File from an <input type="file"> and a restricted key whose corsOrigins list the page.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const tus = require("tus-js-client");

const base = process.env.RELAYCAST || "http://localhost:8080";
const key = process.env.KEY;
const file = process.argv[2];
// Large chunks mean few requests (each PATCH counts against the API rate limit).
const chunkSize = Number(process.env.CHUNK_SIZE || 64 * 1024 * 1024);
const auth = { Authorization: `Bearer ${key}` };

function upload() {
  return new Promise((resolve, reject) => {
    const up = new tus.Upload(fs.createReadStream(file), {
      endpoint: `${base}/v1/uploads`,
      headers: auth,
      chunkSize,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      metadata: { filename: path.basename(file) },
      onProgress: (sent, total) => {
        process.stderr.write(`\ruploaded ${((sent / total) * 100).toFixed(1)}%`);
      },
      onError: reject,
      onSuccess: ({ lastResponse }) => {
        process.stderr.write("\n");
        resolve(lastResponse.getHeader("Relaycast-Media-Id"));
      },
    });
    up.start();
  });
}

async function waitUntilProbed(mediaId) {
  for (;;) {
    const response = await fetch(`${base}/v1/media/${mediaId}`, { headers: auth });
    const item = await response.json();
    if (!["uploading", "processing"].includes(item.status)) return item;
    await new Promise((done) => setTimeout(done, 500));
  }
}

async function main() {
  if (!key || !file) {
    console.error("usage: RELAYCAST=http://host:8080 KEY=rk_... node upload.js FILE");
    process.exit(2);
  }
  const mediaId = await upload();
  const item = await waitUntilProbed(mediaId);
  console.log(JSON.stringify(item));
  process.exit(item.status === "ready" ? 0 : 1);
}

main().catch((error) => {
  console.error(`upload failed: ${error.message || error}`);
  process.exit(1);
});

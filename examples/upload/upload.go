// Resumable upload to relaycast with plain tus 1.0 requests, Go standard library only.
//
//	RELAYCAST=http://localhost:8080 KEY=rk_... go run upload.go video.mp4
//
// Creates the upload (POST), sends the file in chunks (PATCH, each with a sha1
// checksum), and after any failure asks the server how much it has (HEAD) and goes on
// from there. Then waits for the media item to be probed and prints it.
package main

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

const maxAttempts = 6

var (
	base   = getenv("RELAYCAST", "http://localhost:8080")
	apiKey = os.Getenv("KEY")
	// Large chunks mean few requests (each PATCH counts against the API rate limit).
	chunkSize = int64(64 << 20)
	client    = &http.Client{Timeout: 10 * time.Minute}
)

func getenv(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

func newRequest(method, target string, body io.Reader) *http.Request {
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		fail(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Tus-Resumable", "1.0.0")
	return req
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "upload failed:", err)
	os.Exit(1)
}

// create starts an upload; it returns the upload's URL and the id of the media item
// it will become.
func create(name string, size int64) (string, string) {
	req := newRequest(http.MethodPost, base+"/v1/uploads", nil)
	req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
	req.Header.Set("Upload-Metadata", "filename "+base64.StdEncoding.EncodeToString([]byte(name)))
	resp, err := client.Do(req)
	if err != nil {
		fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(resp.Body)
		fail(fmt.Errorf("create: HTTP %d: %s", resp.StatusCode, body))
	}
	endpoint, _ := url.Parse(base + "/v1/uploads")
	location, err := endpoint.Parse(resp.Header.Get("Location")) // may be root-relative
	if err != nil {
		fail(err)
	}
	return location.String(), resp.Header.Get("Relaycast-Media-Id")
}

// patch sends [offset, offset+n) of the file and returns the server's new offset.
func patch(upload string, file *os.File, offset, n int64) (int64, error) {
	digest := sha1.New()
	if _, err := io.Copy(digest, io.NewSectionReader(file, offset, n)); err != nil {
		return 0, err
	}
	req := newRequest(http.MethodPatch, upload, io.NewSectionReader(file, offset, n))
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	req.Header.Set("Upload-Checksum", "sha1 "+base64.StdEncoding.EncodeToString(digest.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		body, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("PATCH at %d: HTTP %d: %s", offset, resp.StatusCode, body)
	}
	return strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
}

// offsetOf asks the server how many bytes of the upload it has stored.
func offsetOf(upload string) (int64, error) {
	resp, err := client.Do(newRequest(http.MethodHead, upload, nil))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HEAD: HTTP %d", resp.StatusCode)
	}
	return strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
}

func send(upload string, file *os.File, size int64) {
	var offset int64
	failures := 0
	for offset < size {
		n := size - offset
		if n > chunkSize {
			n = chunkSize
		}
		next, err := patch(upload, file, offset, n)
		if err == nil {
			offset, failures = next, 0
			fmt.Fprintf(os.Stderr, "\ruploaded %.1f%%", float64(offset)*100/float64(size))
			continue
		}
		failures++
		if failures >= maxAttempts {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "\n%v; resuming\n", err)
		time.Sleep(time.Duration(failures) * time.Second)
		if known, headErr := offsetOf(upload); headErr == nil {
			offset = known
		}
	}
	fmt.Fprintln(os.Stderr)
}

func waitUntilProbed(mediaID string) map[string]any {
	for {
		resp, err := client.Do(newRequest(http.MethodGet, base+"/v1/media/"+mediaID, nil))
		if err != nil {
			fail(err)
		}
		var item map[string]any
		err = json.NewDecoder(resp.Body).Decode(&item)
		resp.Body.Close()
		if err != nil {
			fail(err)
		}
		if status := item["status"]; status != "uploading" && status != "processing" {
			return item
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func main() {
	if apiKey == "" || len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: RELAYCAST=http://host:8080 KEY=rk_... go run upload.go FILE")
		os.Exit(2)
	}
	if value, err := strconv.ParseInt(os.Getenv("CHUNK_SIZE"), 10, 64); err == nil && value > 0 {
		chunkSize = value
	}
	file, err := os.Open(os.Args[1])
	if err != nil {
		fail(err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		fail(err)
	}
	upload, mediaID := create(filepath.Base(os.Args[1]), info.Size())
	send(upload, file, info.Size())
	item := waitUntilProbed(mediaID)
	out, _ := json.Marshal(item)
	fmt.Println(string(out))
	if item["status"] != "ready" {
		os.Exit(1)
	}
}

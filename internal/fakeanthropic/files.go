package fakeanthropic

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FilesBeta is the anthropic-beta value of the Files API (see
// Options.RequireFilesBeta).
const FilesBeta = "files-api-2025-04-14"

// File is a snapshot of a file the fake holds.
type File struct {
	ID, Filename, MimeType string
	SizeBytes              int64
	CreatedAt              time.Time
	// Downloadable is false for uploads, as Anthropic reports; the fake
	// serves /content for every file all the same.
	Downloadable bool
	Content      []byte
}

type file struct{ File }

func (f *file) appendJSON(dst []byte) []byte {
	return fmt.Appendf(dst, `{"id":%q,"type":"file","filename":%s,"mime_type":%s,"size_bytes":%d,"created_at":%s,"downloadable":%t}`,
		f.ID, jsonString(f.Filename), jsonString(f.MimeType), f.SizeBytes, timeJSON(f.CreatedAt), f.Downloadable)
}

func (f *file) snapshot() File {
	out := f.File
	out.Content = append([]byte(nil), f.Content...)
	return out
}

// Files returns snapshots of the files the fake holds (deleted ones left
// out), oldest first.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]File, 0, len(s.files))
	for _, f := range s.files {
		out = append(out, f.snapshot())
	}
	return out
}

// AddFile stores a file as if Anthropic had made it (say, a code execution
// output, which is downloadable) and returns it.
func (s *Server) AddFile(filename, mimeType string, content []byte, downloadable bool) File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addFile(filename, mimeType, content, downloadable).snapshot()
}

func (s *Server) addFile(filename, mimeType string, content []byte, downloadable bool) *file {
	s.fileSeq++
	f := &file{File{ID: fmt.Sprintf("file_01FakeFile%014d", s.fileSeq), Filename: filename, MimeType: mimeType,
		SizeBytes: int64(len(content)), CreatedAt: time.Now(), Downloadable: downloadable, Content: append([]byte(nil), content...)}}
	s.files = append(s.files, f)
	return f
}

func (s *Server) findFile(id string) *file {
	for _, f := range s.files {
		if f.ID == id {
			return f
		}
	}
	return nil
}

// filesBetaOK answers 400 and reports false when Options.RequireFilesBeta
// is set and the request lacks the beta header.
func (s *Server) filesBetaOK(k *call) bool {
	if !s.opts.RequireFilesBeta || hasFilesBeta(k.r) {
		return true
	}
	writeError(k.w, http.StatusBadRequest, "invalid_request_error", "The Files API is in beta: send the header anthropic-beta: "+FilesBeta)
	return false
}

func hasFilesBeta(r *http.Request) bool {
	for _, v := range r.Header.Values("anthropic-beta") {
		for b := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(b) == FilesBeta {
				return true
			}
		}
	}
	return false
}

// serveFiles answers POST (upload) and GET (list) /v1/files.
func (s *Server) serveFiles(k *call) {
	if !s.filesBetaOK(k) {
		return
	}
	switch k.r.Method {
	case http.MethodPost:
		name, typ, content, err := uploaded(k.r, k.body)
		if err != nil {
			writeError(k.w, http.StatusBadRequest, "invalid_request_error", err.Error())
			return
		}
		s.mu.Lock()
		out := s.addFile(name, typ, content, false).appendJSON(nil)
		s.mu.Unlock()
		writeJSON(k.w, out)
	case http.MethodGet:
		s.mu.Lock()
		ids := make([]string, len(s.files))
		byID := make(map[string]*file, len(s.files))
		for i, f := range s.files {
			ids[len(ids)-1-i] = f.ID // newest first
			byID[f.ID] = f
		}
		from, to, more, status, msg := paginate(ids, k.r.URL.Query())
		var out []byte
		if status == 0 {
			out = appendList(nil, ids[from:to], more, true, func(dst []byte, id string) []byte { return byID[id].appendJSON(dst) })
		}
		s.mu.Unlock()
		if status != 0 {
			writeError(k.w, status, errorType(status), msg)
			return
		}
		writeJSON(k.w, out)
	default:
		writeError(k.w, http.StatusMethodNotAllowed, "invalid_request_error", "Method Not Allowed")
	}
}

// uploaded reads the multipart form field "file" out of body.
func uploaded(r *http.Request, body []byte) (name, typ string, content []byte, err error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return "", "", nil, errors.New("the request must be multipart/form-data with a file field")
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return "", "", nil, errors.New("file: Field required")
		}
		if err != nil {
			return "", "", nil, fmt.Errorf("malformed multipart body: %w", err)
		}
		if p.FormName() != "file" {
			continue
		}
		content, err = io.ReadAll(p)
		if err != nil {
			return "", "", nil, fmt.Errorf("malformed multipart body: %w", err)
		}
		name = p.FileName()
		if name == "" {
			name = "upload"
		}
		return name, mimeOf(p.Header.Get("Content-Type"), name, content), content, nil
	}
}

// mimeOf is the part's own type, or else one guessed from the name or the
// bytes, without parameters.
func mimeOf(declared, name string, content []byte) string {
	t := declared
	if t == "" || t == "application/octet-stream" {
		if byExt := mime.TypeByExtension(filepath.Ext(name)); byExt != "" {
			t = byExt
		} else {
			t = http.DetectContentType(content)
		}
	}
	if mt, _, err := mime.ParseMediaType(t); err == nil {
		return mt
	}
	return t
}

// serveFile answers /v1/files/{id} (GET, DELETE) and /v1/files/{id}/content (GET).
func (s *Server) serveFile(k *call) {
	if !s.filesBetaOK(k) {
		return
	}
	id, sub, _ := strings.Cut(strings.TrimPrefix(k.r.URL.Path, "/v1/files/"), "/")
	var want []string
	switch sub {
	case "":
		want = []string{http.MethodGet, http.MethodDelete}
	case "content":
		want = []string{http.MethodGet}
	default:
		writeError(k.w, http.StatusNotFound, "not_found_error", "Not found")
		return
	}
	if !slices.Contains(want, k.r.Method) {
		writeError(k.w, http.StatusMethodNotAllowed, "invalid_request_error", "Method Not Allowed")
		return
	}
	s.mu.Lock()
	f := s.findFile(id)
	if f == nil {
		s.mu.Unlock()
		writeError(k.w, http.StatusNotFound, "not_found_error", fmt.Sprintf("File not found: %s", id))
		return
	}
	var out []byte
	typ := "" // of a file's content
	switch {
	case sub == "content":
		out, typ = f.Content, f.MimeType
		if typ == "" {
			typ = "application/octet-stream"
		}
	case k.r.Method == http.MethodDelete:
		s.files = slices.DeleteFunc(s.files, func(x *file) bool { return x == f })
		out = fmt.Appendf(nil, `{"id":%q,"type":"file_deleted"}`, id)
	default:
		out = f.appendJSON(nil)
	}
	s.mu.Unlock()
	if typ == "" {
		writeJSON(k.w, out)
		return
	}
	k.w.Header().Set("content-type", typ)
	k.w.Header().Set("content-length", strconv.Itoa(len(out)))
	_, _ = k.w.Write(out)
}

package anthropic

import (
	"bytes"
	"encoding/base64"
)

// pdfPages counts the pages of a base64 PDF given as the raw content of a
// JSON string (JSON escapes allowed, such as "\/" for '/'), decoding it in
// small chunks: memory stays a few kilobytes whatever the document's size.
//
// A page is a page object: the name /Type followed by the name /Page (not
// /Pages), whitespace allowed between. The count is an upper bound of what
// the upstream renders only when every page object is visible in the file's
// plain text, so it is trusted only when
//   - the data decodes as base64 and has a %PDF- header in its first 1024
//     bytes (where readers look for it);
//   - no object stream (/ObjStm) is present: PDF 1.5 may compress page
//     objects into one, where a text scan cannot see them;
//   - no structural name (/Type, /Page, /Pages, /ObjStm, /Count, /Kids) is
//     spelled with #xx escapes, and no /Type takes an indirect reference
//     ("/Type 12 0 R"): both hide a page from a text scan but not from a
//     PDF reader;
//   - at least one page was found.
//
// Pages that are written but unreachable (replaced by an incremental
// update, or a /Type /Page inside a string) are counted too, which only
// raises the bound. The largest /Count seen (a page tree's leaf count) also
// counts, which covers readers that accept a page object without /Type.
// Otherwise ok is false and the caller assumes the most pages a request may
// carry.
func pdfPages(raw []byte) (pages int64, ok bool) {
	var d pdfDecoder
	d.feedJSON(raw)
	d.flush()
	return d.scan.result(d.bad)
}

// pdfDecoder turns JSON-escaped base64 into PDF bytes for the scanner.
type pdfDecoder struct {
	stage [4096]byte // base64 characters awaiting decoding (a multiple of 4 when full)
	n     int
	out   [3072]byte
	scan  pdfScan
	bad   bool
}

func (d *pdfDecoder) feedJSON(raw []byte) {
	for i := 0; i < len(raw) && !d.bad; {
		j := bytes.IndexByte(raw[i:], '\\')
		if j < 0 {
			d.stageRun(raw[i:])
			return
		}
		d.stageRun(raw[i : i+j])
		i += j
		if i+1 >= len(raw) {
			d.bad = true
			return
		}
		switch raw[i+1] {
		case '/':
			d.stageRun([]byte{'/'})
			i += 2
		case 'n', 'r', 't', 'f', 'b':
			i += 2 // line breaks in MIME-style base64
		case 'u':
			r := hex4(raw[i+2:])
			if r < 0 || r >= 0x80 {
				d.bad = true
				return
			}
			d.stageRun([]byte{byte(r)})
			i += 6
		default:
			d.bad = true
			return
		}
	}
}

func (d *pdfDecoder) stageRun(s []byte) {
	for len(s) > 0 && !d.bad {
		k := copy(d.stage[d.n:], s)
		if bytes.IndexAny(d.stage[d.n:d.n+k], "-_") >= 0 {
			// URL-safe alphabet: map to the standard one.
			for i, c := range d.stage[d.n : d.n+k] {
				switch c {
				case '-':
					d.stage[d.n+i] = '+'
				case '_':
					d.stage[d.n+i] = '/'
				}
			}
		}
		d.n += k
		s = s[k:]
		if d.n == len(d.stage) {
			d.decode(base64.StdEncoding, d.stage[:])
			d.n = 0
		}
	}
}

func (d *pdfDecoder) decode(enc *base64.Encoding, src []byte) {
	m, err := enc.Decode(d.out[:], src)
	if err != nil {
		d.bad = true
		return
	}
	d.scan.feed(d.out[:m])
}

func (d *pdfDecoder) flush() {
	if d.bad {
		return
	}
	rest := bytes.TrimRight(d.stage[:d.n], "=")
	if len(rest) > 0 {
		d.decode(base64.RawStdEncoding, rest)
	}
	d.n = 0
}

// pdfScan recognises the few PDF tokens pdfPages needs, one byte at a time,
// with a fast path that skips to the next '/' when nothing is pending.
type pdfScan struct {
	pos      int64
	header   bool
	hdrMatch int

	inName   bool
	name     [32]byte
	nameLen  int
	nameLong bool
	nameHash bool

	afterType    bool // the last token was the name /Type
	typeComment  bool // skipping a comment between /Type and its value
	countPending bool // the last token was /Count: its number follows
	countDigits  int
	countVal     int64

	pages      int64
	maxCount   int64
	objStm     bool
	unreliable bool
}

const pdfHeaderWindow = 1024

var pdfMagic = []byte("%PDF-")

func pdfSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0
}

func pdfDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

func (s *pdfScan) feed(p []byte) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !s.header && s.pos+int64(i) < pdfHeaderWindow {
			switch {
			case c == pdfMagic[s.hdrMatch]:
				s.hdrMatch++
				if s.hdrMatch == len(pdfMagic) {
					s.header = true
				}
			case c == pdfMagic[0]:
				s.hdrMatch = 1
			default:
				s.hdrMatch = 0
			}
		}
		if s.inName {
			if !pdfSpace(c) && !pdfDelim(c) {
				if s.nameLen < len(s.name) {
					s.name[s.nameLen] = c
					s.nameLen++
				} else {
					s.nameLong = true
				}
				if c == '#' {
					s.nameHash = true
				}
				continue
			}
			s.endName()
		}
		if s.typeComment {
			if c == '\r' || c == '\n' {
				s.typeComment = false
			}
			continue
		}
		if s.countPending {
			if c >= '0' && c <= '9' {
				if s.countVal < 1e9 {
					s.countVal = s.countVal*10 + int64(c-'0')
				}
				s.countDigits++
				continue
			}
			if pdfSpace(c) && s.countDigits == 0 {
				continue
			}
			if s.countDigits > 0 {
				s.maxCount = max(s.maxCount, s.countVal)
			}
			s.countPending = false
		}
		switch {
		case c == '/':
			s.inName, s.nameLen, s.nameLong, s.nameHash = true, 0, false, false
		case pdfSpace(c):
		case c == '%' && s.afterType:
			s.typeComment = true
		default:
			if s.afterType && c >= '0' && c <= '9' {
				s.unreliable = true
			}
			s.afterType = false
		}
		// Fast path: nothing pending and the header window passed (or the
		// header found), so only the next name matters.
		if !s.inName && !s.afterType && !s.countPending && (s.header || s.pos+int64(i) >= pdfHeaderWindow) {
			j := bytes.IndexByte(p[i+1:], '/')
			if j < 0 {
				break
			}
			i += j // the loop's i++ lands on the '/'
		}
	}
	s.pos += int64(len(p))
}

// structuralNames are the names whose #-escaped spelling makes the count
// untrustworthy.
var structuralNames = [...]string{"Type", "Page", "Pages", "ObjStm", "Count", "Kids"}

func (s *pdfScan) endName() {
	s.inName = false
	name := s.name[:s.nameLen]
	if s.nameHash && !s.nameLong {
		var buf [32]byte
		dec := buf[:0]
		for i := 0; i < len(name); i++ {
			if name[i] == '#' && i+2 < len(name) && hexVal(name[i+1]) >= 0 && hexVal(name[i+2]) >= 0 {
				dec = append(dec, byte(hexVal(name[i+1])<<4|hexVal(name[i+2])))
				i += 2
				continue
			}
			dec = append(dec, name[i])
		}
		for _, n := range structuralNames {
			if string(dec) == n {
				s.unreliable = true
			}
		}
		s.afterType = false
		return
	}
	if s.nameLong {
		s.afterType = false
		return
	}
	switch string(name) {
	case "Type":
		s.afterType = true
		return
	case "Page":
		if s.afterType {
			s.pages++
		}
	case "ObjStm":
		s.objStm = true
	case "Count":
		s.countPending, s.countVal, s.countDigits = true, 0, 0
	}
	s.afterType = false
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func (s *pdfScan) result(bad bool) (int64, bool) {
	if s.inName {
		s.endName()
	}
	if s.countPending && s.countDigits > 0 {
		s.maxCount = max(s.maxCount, s.countVal)
	}
	if bad || !s.header || s.objStm || s.unreliable {
		return 0, false
	}
	n := max(s.pages, s.maxCount)
	return n, n > 0
}
